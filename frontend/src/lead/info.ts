// Lead view sections: header, summary with translated figures, members, case actions, evidence table.

import { api, ApiError, type LeadDetail } from "../api";
import { clear, day, dt, h, money, num, toast } from "../dom";
import { featureRows } from "../features";
import { swatchSvg } from "../icons";
import { kindLabel, lang, medTypeLabel, t } from "../i18n";
import { severityBadge, statusBadge, TRANSITIONS } from "../queue";

export const PRINT_ROWS = 12;

export interface Session {
  user: string;
  role: string;
}

export function leadHeader(lead: LeadDetail, printBtn: HTMLElement): HTMLElement {
  return h("div", { class: "lead-head" },
    h("a", { href: "#/queue", class: "back no-print" }, t("lead.back")),
    severityBadge(lead.severity),
    h("h1", {}, kindLabel(lead.kind)),
    h("code", { class: "lid", id: "lead-id" }, lead.lead_id),
    statusBadge(lead.status),
    lead.overdue ? h("span", { class: "overdue", "data-overdue": "true" }, t("lead.overdue")) : null,
    h("span", { class: "spacer" }),
    printBtn,
  );
}

/** Score, amount, period, evidence, assignee, response clock, then the detector's figures in words with units. */
export function figuresList(lead: LeadDetail): HTMLElement {
  const figures = h("dl", { class: "kv figures", id: "lead-figures" },
    h("dt", {}, t("lead.score")), h("dd", {}, lead.score.toFixed(3)),
    h("dt", {}, t("lead.amount")), h("dd", { class: "amount" }, money(lead.amount_at_risk)),
    h("dt", {}, t("lead.period")), h("dd", {}, `${dt(lead.period_start)} – ${dt(lead.period_end)}`),
    h("dt", {}, t("col.evidence")), h("dd", {}, num(lead.evidence?.length ?? lead.evidence_count)),
    h("dt", {}, t("lead.assignee")), h("dd", { "data-figure": "assignee" }, lead.assignee ?? t("lead.none")),
  );
  if (lead.response_due_at) {
    figures.append(h("dt", {}, t("lead.due")), h("dd", { "data-figure": "due", class: lead.overdue ? "overdue" : "" },
      dt(lead.response_due_at) + (lead.overdue ? ` · ${t("lead.overdue")}` : "")));
  }
  const rows = featureRows(lead.features ?? {});
  const tech = h("dl", { class: "kv" });
  for (const r of rows) {
    const text = r.value.length > 160 ? `${r.value.slice(0, 159)}…` : r.value;
    const pair = [h("dt", { "data-feature": r.key }, r.name), h("dd", { title: r.value.length > 160 ? r.value : null }, text)];
    if (r.known) figures.append(...pair);
    else tech.append(...pair);
  }
  return h("div", {}, figures, tech.childElementCount
    ? h("details", { class: "tech" }, h("summary", {}, t("lead.tech")), tech) : null);
}

export function memberList(title: string, type: string, list: string[], find: (code: string) => void):
  HTMLElement | null {
  if (!list?.length) return null;
  return h("div", { class: "mlist" },
    h("h4", {}, swatchSvg(type, 14), ` ${title} (${list.length})`),
    h("div", { class: "chips" }, ...list.map((code) => h("button", { class: "chip", "data-member": code,
      onclick: () => find(code) }, code))));
}

export function caseSection(lead: LeadDetail, session: Session, canAct: boolean, reload: () => void): HTMLElement {
  const sec = h("div", { class: "case no-print", id: "case-section" }, h("h3", {}, t("lead.case")));
  const fail = (e: unknown, btn: HTMLButtonElement) => {
    toast(e instanceof ApiError && e.status === 403 ? t("err.forbidden") : t("err.generic",
      { msg: (e as Error).message }), "error");
    btn.disabled = false;
  };
  if (canAct) {
    const next = TRANSITIONS[lead.status] ?? [];
    const sel = h("select", { id: "status-select", "aria-label": t("lead.status_change") },
      ...next.map((s) => h("option", { value: s }, `${t(`status.${lead.status}`)} → ${t(`status.${s}`)}`)));
    const comment = h("input", { type: "text", id: "status-comment", placeholder: t("lead.comment"),
      "aria-label": t("lead.comment") });
    const save = h("button", { class: "primary small", id: "status-save" }, t("lead.save_status"));
    save.addEventListener("click", async () => {
      save.disabled = true;
      try {
        await api.setStatus(lead.lead_id, sel.value, comment.value.trim());
        toast(t("lead.saved"));
        reload();
      } catch (e) {
        fail(e, save);
      }
    });
    const note = h("textarea", { id: "note-text", rows: 2, placeholder: t("lead.note_ph"), "aria-label": t("lead.notes") });
    const addNote = h("button", { class: "small", id: "note-add" }, t("lead.add_note"));
    addNote.addEventListener("click", async () => {
      const text = note.value.trim();
      if (!text) return;
      addNote.disabled = true;
      try {
        await api.addNote(lead.lead_id, text);
        toast(t("lead.saved"));
        reload();
      } catch (e) {
        fail(e, addNote);
      }
    });
    const assignee = h("input", { type: "text", id: "assignee-input", value: lead.assignee ?? session.user,
      maxlength: 64, "aria-label": t("lead.assignee") });
    const assign = h("button", { class: "small", id: "assign-save" }, t("lead.assign"));
    assign.addEventListener("click", async () => {
      assign.disabled = true;
      try {
        await api.assign(lead.lead_id, assignee.value.trim() || null);
        toast(t("lead.saved"));
        reload();
      } catch (e) {
        fail(e, assign);
      }
    });
    sec.append(h("div", { class: "case-actions", id: "case-actions" },
      h("label", {}, t("lead.status_change"), sel), comment, save,
      h("label", {}, t("lead.assignee"), h("div", { class: "row" }, assignee, assign)), note, addNote));
  } else {
    sec.append(h("p", { class: "muted readonly", id: "readonly-note" }, t("lead.readonly")));
  }
  sec.append(h("h4", {}, t("lead.notes")));
  const notes = lead.notes ?? [];
  sec.append(notes.length ? h("ul", { class: "notes", id: "notes" }, ...notes.map((n) =>
    h("li", {}, h("div", {}, n.text), h("small", { class: "muted" }, `${n.user} · ${dt(n.at)}`))))
    : h("p", { class: "muted" }, t("lead.none")));
  const history = lead.history ?? [];
  if (history.length) {
    sec.append(h("h4", {}, t("lead.history")), h("ul", { class: "history" }, ...history.map((x) =>
      h("li", {}, h("small", {}, `${dt(x.at)} ${x.user}: `), x.from ? `${t(`status.${x.from}`)} → ` : "",
        t(`status.${x.to}`), x.comment ? ` — ${x.comment}` : ""))));
  }
  return sec;
}

export function evidenceTable(lead: LeadDetail, select: (mdtrt: string) => void): HTMLElement {
  const rows = lead.evidence_visits ?? [];
  const total = Math.max(rows.length, lead.evidence?.length ?? 0);
  const table = h("table", { class: "evidence", id: "evidence-table" },
    h("caption", { class: "sr-only" }, t("lead.evidence")),
    h("thead", {}, h("tr", {},
      ...["mdtrt_id", "begntime", "endtime", "med_type", "psn_no", "fixmedins_code", "atddr_no", "dise"].map((k) =>
        h("th", { scope: "col" }, t(`ev.${k}`))),
      h("th", { class: "num", scope: "col" }, t("ev.medfee_sumamt")),
      h("th", { class: "num", scope: "col" }, t("ev.fund_pay_sumamt")))),
    h("tbody", {}, ...rows.map((v, i) => h("tr", { class: i >= PRINT_ROWS ? "ev-row print-hide" : "ev-row",
      "data-mdtrt-id": v.mdtrt_id, onclick: () => select(v.mdtrt_id) },
    h("td", {}, h("code", {}, v.mdtrt_id)), h("td", {}, dt(v.begntime)), h("td", {}, dt(v.endtime)),
    h("td", {}, medTypeLabel(v.med_type)), h("td", {}, v.psn_no ?? ""), h("td", {}, v.fixmedins_code ?? ""),
    h("td", {}, v.atddr_no ?? ""), h("td", { title: v.dise_codg ?? "" }, v.dise_name || v.dise_codg || ""),
    h("td", { class: "num" }, money(v.medfee_sumamt)), h("td", { class: "num" }, money(v.fund_pay_sumamt))))));
  const sum = rows.reduce((acc, v) => acc + (Number(v.fund_pay_sumamt) || 0), 0);
  return h("section", { class: "evidence-wrap", "aria-label": t("lead.evidence") },
    h("h2", {}, t("lead.evidence_n", { n: num(total) }), h("small", { class: "muted" },
      `  ${day(lead.period_start)} – ${day(lead.period_end)} · ${t("ev.fund_pay_sumamt")} ${money(sum)}`)),
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": t("lead.evidence_table") }, table),
    rows.length > PRINT_ROWS ? h("p", { class: "print-only muted" },
      t("lead.print_more", { shown: PRINT_ROWS, n: rows.length })) : null);
}

export function explanationOf(lead: LeadDetail): string {
  return (lang() === "zh" ? lead.explanation_zh : lead.explanation_en) ?? "";
}

export { clear };
