// Lead view: explanation and figures, case actions, the lead's link chart with its tools, evidence table, print.

import type { NodeSingular } from "cytoscape";
import { api, ApiError, asList, type GNode, type LeadDetail } from "./api";
import { LinkChart, type ChartSnapshot, type LayoutName } from "./chart";
import { clear, day, dt, fmtValue, h, money, num, toast } from "./dom";
import { renderEdgeInfo, renderEntity, renderEntityHint } from "./entity";
import { chartPngDataUrl, downloadGraphml, downloadPng, downloadSvg } from "./export";
import { CHART_TYPES, swatchSvg } from "./icons";
import { kindLabel, lang, medTypeLabel, t } from "./i18n";
import { severityBadge, statusBadge, TRANSITIONS } from "./queue";

const DAY = 86_400_000;
const PRINT_ROWS = 12;

export interface Session {
  user: string;
  role: string;
}

export interface LeadViewHandle {
  chart: LinkChart | null;
  /** Set before re-rendering the same lead (language switch) to keep the chart as the analyst left it. */
  snapshot?: { leadId: string; chart: ChartSnapshot; layout: string } | null;
  snapshotNow?: () => { leadId: string; chart: ChartSnapshot; layout: string };
  destroy: () => void;
}

function defaultLayout(kind: string): LayoutName {
  return kind === "drug_resale" ? "dagre" : "fcose";
}

function memberIds(lead: LeadDetail): Set<string> {
  const ids = new Set<string>();
  for (const p of lead.persons ?? []) ids.add(`Person:${p}`);
  for (const p of lead.practitioners ?? []) ids.add(`Practitioner:${p}`);
  for (const i of lead.institutions ?? []) {
    ids.add(`Institution:${i}`);
    ids.add(`Pharmacy:${i}`);
  }
  return ids;
}

export async function renderLead(root: HTMLElement, leadId: string, session: Session,
  go: (hash: string) => void, handle: LeadViewHandle): Promise<void> {
  clear(root);
  root.append(h("p", { class: "muted pad" }, t("chart.loading")));
  const [lead, graph] = await Promise.all([api.lead(leadId), api.leadGraph(leadId)]);
  clear(root);
  const canAct = session.role === "admin" || session.role === "investigator";
  const explanation = () => (lang() === "zh" ? lead.explanation_zh : lead.explanation_en);

  // ---- header ----
  const printBtn = h("button", { class: "ghost", id: "print-lead" }, t("lead.print"));
  const head = h("div", { class: "lead-head" },
    h("a", { href: "#/queue", class: "back no-print" }, t("lead.back")),
    severityBadge(lead.severity),
    h("h1", {}, kindLabel(lead.kind)),
    h("code", { class: "lid", id: "lead-id" }, lead.lead_id),
    statusBadge(lead.status),
    h("span", { class: "spacer" }),
    printBtn,
  );

  // ---- left: summary, figures, members, case ----
  const figures = h("dl", { class: "kv figures", id: "lead-figures" },
    h("dt", {}, t("lead.score")), h("dd", {}, lead.score.toFixed(3)),
    h("dt", {}, t("lead.amount")), h("dd", { class: "amount" }, money(lead.amount_at_risk)),
    h("dt", {}, t("lead.period")), h("dd", {}, `${dt(lead.period_start)} – ${dt(lead.period_end)}`),
    h("dt", {}, t("col.evidence")), h("dd", {}, num(lead.evidence?.length ?? lead.evidence_count)),
    h("dt", {}, t("lead.assignee")), h("dd", { "data-figure": "assignee" }, lead.assignee ?? t("lead.none")),
  );
  for (const [k, v] of Object.entries(lead.features ?? {})) {
    const text = fmtValue(v);
    figures.append(h("dt", {}, k), h("dd", { title: text.length > 160 ? text : null },
      text.length > 160 ? `${text.slice(0, 159)}…` : text));
  }
  const memberList = (title: string, type: string, list: string[]) => list?.length ? h("div", { class: "mlist" },
    h("h4", {}, swatchSvg(type, 14), ` ${title} (${list.length})`),
    h("div", { class: "chips" }, ...list.map((code) => h("button", { class: "chip", "data-member": code,
      onclick: () => handle.chart?.find(code) }, code)))) : null;
  const info = h("aside", { class: "lead-info", id: "lead-info" },
    h("h2", {}, t("lead.summary")),
    h("p", { class: "explanation", id: "lead-explanation" }, explanation()),
    h("h3", {}, t("lead.figures")), figures,
    h("h3", {}, t("lead.members")),
    memberList(t("lead.persons"), "Person", lead.persons),
    memberList(t("lead.practitioners"), "Practitioner", lead.practitioners),
    memberList(t("lead.institutions"), "Institution", lead.institutions),
    caseSection(lead, session, canAct, () => void reloadCase()),
  );

  async function reloadCase(): Promise<void> {
    const fresh = await api.lead(leadId);
    Object.assign(lead, fresh);
    const old = info.querySelector(".case");
    old?.replaceWith(caseSection(lead, session, canAct, () => void reloadCase()));
    const fig = info.querySelector("[data-figure=assignee]");
    if (fig) fig.textContent = lead.assignee ?? t("lead.none");
    head.querySelector(".status")?.replaceWith(statusBadge(lead.status));
  }

  // ---- centre: chart ----
  const cyBox = h("div", { id: "cy", class: "cy" });
  const status = h("div", { class: "chart-status", id: "chart-status" });
  const entityPanel = h("aside", { class: "entity-panel", id: "entity-panel" });
  renderEntityHint(entityPanel);
  const chartArea = h("section", { class: "chart-area" }, cyBox, status);
  const evidenceSection = evidenceTable(lead, (mdtrt) => handle.chart?.find(mdtrt));
  const printImg = h("img", { id: "print-chart", class: "print-only", alt: "" });
  const printFoot = h("p", { class: "print-only muted", id: "print-foot" });
  root.append(h("section", { class: "lead-view", "data-lead-id": lead.lead_id, "data-kind": lead.kind },
    head,
    h("div", { class: "lead-grid" }, info, chartArea, entityPanel),
    printImg, evidenceSection, printFoot));

  const chart = new LinkChart({
    container: cyBox,
    members: memberIds(lead),
    events: {
      onSelect: (node: NodeSingular | null) => {
        if (!node) renderEntityHint(entityPanel);
        else void renderEntity(entityPanel, node, chart, (id) => go(`#/lead/${encodeURIComponent(id)}`), refreshStatus);
      },
      onSelectEdge: (edge) => renderEdgeInfo(entityPanel, edge),
      onChange: () => refreshStatus(),
    },
  });
  handle.chart = chart;
  handle.destroy = () => chart.destroy();
  const snap = handle.snapshot?.leadId === lead.lead_id ? handle.snapshot : null;
  handle.snapshot = null;
  if (snap) chart.restore(snap.chart);
  else chart.add(graph, { core: true });

  // toolbar
  let layoutName = (snap?.layout as LayoutName | undefined) ?? defaultLayout(lead.kind);
  const layoutSel = h("select", { id: "layout-select", title: t("chart.layout") },
    ...(["fcose", "dagre", "breadthfirst", "concentric"] as LayoutName[]).map((n) =>
      h("option", { value: n, selected: n === layoutName }, t(`chart.layout.${n}`))));
  layoutSel.addEventListener("change", () => {
    layoutName = layoutSel.value as LayoutName;
    void chart.layout(layoutName);
  });
  const evBtn = h("button", { class: "small toggle", id: "evidence-toggle", "aria-pressed": "false" },
    t("chart.evidence"));
  evBtn.addEventListener("click", () => {
    chart.setFocusEvidence(!chart.evidenceFocused());
    evBtn.setAttribute("aria-pressed", String(chart.evidenceFocused()));
  });
  const typeFilter = h("div", { class: "type-filter", id: "type-filter", title: t("chart.types") },
    ...CHART_TYPES.map((type) => {
      const box = h("input", { type: "checkbox", checked: chart.typeVisible(type), "data-type": type });
      box.addEventListener("change", () => chart.setTypeVisible(type, box.checked));
      return h("label", { class: "type-opt", title: t(`type.${type}`) }, box, swatchSvg(type, 16),
        h("span", {}, t(`type.${type}`)));
    }));
  const exportSel = h("select", { id: "export-select" },
    h("option", { value: "" }, `⤓ ${t("chart.export")}`),
    h("option", { value: "png" }, t("chart.png")),
    h("option", { value: "svg" }, t("chart.svg")),
    h("option", { value: "graphml" }, t("chart.graphml")));
  const base = `fraudnet-${lead.lead_id}`;
  exportSel.addEventListener("change", () => {
    const what = exportSel.value;
    exportSel.value = "";
    try {
      if (what === "png") downloadPng(chart.cy, base);
      else if (what === "svg") downloadSvg(chart, base);
      else if (what === "graphml") downloadGraphml(chart, base);
    } catch (e) {
      toast(t("err.generic", { msg: (e as Error).message }), "error");
    }
  });

  // search: in chart first, then the server
  const searchBox = h("input", { type: "search", id: "chart-search", placeholder: t("chart.search") });
  const results = h("div", { class: "search-results", id: "search-results", hidden: true });
  const runSearch = async () => {
    const q = searchBox.value.trim();
    clear(results);
    if (!q) {
      results.hidden = true;
      chart.find("");
      return;
    }
    const hits = chart.find(q);
    results.hidden = false;
    results.append(h("div", { class: "muted" }, hits.length ? `✓ ${hits.length}` : t("chart.no_match")));
    try {
      const found = asList<GNode>(await api.search(q, 12), "results", "items", "entities");
      if (!found.length) results.append(h("div", { class: "muted" }, t("chart.no_results")));
      for (const n of found) {
        const inChart = chart.cy.getElementById(n.id).nonempty();
        results.append(h("div", { class: "result", "data-node-id": n.id }, swatchSvg(n.type, 14),
          h("span", {}, ` ${n.label} `, h("small", {}, n.key)),
          inChart ? h("small", { class: "muted" }, t("chart.in_chart"))
            : h("button", { class: "small", "data-action": "add", onclick: async () => {
              await chart.addEntity(n);
              void runSearch();
            } }, t("chart.add"))));
      }
    } catch (e) {
      results.append(h("div", { class: "error" }, (e as ApiError).message));
    }
  };
  let searchTimer = 0;
  searchBox.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => void runSearch(), 250);
  });
  const closeResults = (ev: Event) => {
    if (!(ev.target instanceof Node) || !chartArea.querySelector(".search")?.contains(ev.target)) results.hidden = true;
  };
  document.addEventListener("pointerdown", closeResults);
  searchBox.addEventListener("focus", () => {
    if (results.childElementCount) results.hidden = false;
  });
  searchBox.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") results.hidden = true;
    if (ev.key === "Enter") {
      clearTimeout(searchTimer);
      void runSearch();
    }
  });

  // time window
  const timeFrom = h("input", { type: "range", id: "time-from", min: "0", max: "0", value: "0", step: "1" });
  const timeTo = h("input", { type: "range", id: "time-to", min: "0", max: "0", value: "0", step: "1" });
  const timeLabel = h("span", { class: "time-label", id: "time-label" });
  const timeReset = h("button", { class: "small ghost", id: "time-reset" }, t("chart.time_all"));
  let domain: [number, number] | null = null;
  const setupTime = () => {
    domain = chart.timeDomain();
    const days = domain ? Math.max(1, Math.ceil((domain[1] - domain[0]) / DAY)) : 0;
    for (const r of [timeFrom, timeTo]) {
      r.max = String(days);
      r.disabled = !domain;
    }
    timeFrom.value = "0";
    timeTo.value = String(days);
    chart.setTimeWindow(null);
    showTime();
  };
  const showTime = () => {
    if (!domain) {
      timeLabel.textContent = "–";
      return;
    }
    const a = domain[0] + Number(timeFrom.value) * DAY;
    const b = domain[0] + Number(timeTo.value) * DAY;
    timeLabel.textContent = `${new Date(a).toISOString().slice(0, 10)} – ${new Date(b).toISOString().slice(0, 10)}`;
  };
  let frame = 0;
  const onTime = (moved: HTMLInputElement) => {
    if (Number(timeFrom.value) > Number(timeTo.value)) {
      if (moved === timeFrom) timeTo.value = timeFrom.value;
      else timeFrom.value = timeTo.value;
    }
    showTime();
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (!domain) return;
      const full = Number(timeFrom.value) === 0 && Number(timeTo.value) === Number(timeTo.max);
      const a = domain[0] + Number(timeFrom.value) * DAY;
      const b = domain[0] + (Number(timeTo.value) + 1) * DAY - 1;
      chart.setTimeWindow(full ? null : [a, b]);
    });
  };
  timeFrom.addEventListener("input", () => onTime(timeFrom));
  timeTo.addEventListener("input", () => onTime(timeTo));
  timeReset.addEventListener("click", () => setupTime());

  const layoutBtn = h("button", { class: "small", id: "relayout", onclick: () => void chart.layout(layoutName) }, "↻");
  chartArea.prepend(
    h("div", { class: "chart-toolbar" },
      h("label", {}, `${t("chart.layout")} `, layoutSel), layoutBtn,
      h("button", { class: "small", id: "fit", onclick: () => chart.fit() }, t("chart.fit")),
      evBtn,
      h("button", { class: "small ghost", id: "unhide", onclick: () => chart.unhideAll() }, t("chart.unhide")),
      h("div", { class: "search" }, searchBox, results),
      exportSel),
    typeFilter,
    h("div", { class: "time-bar" }, h("span", {}, `${t("chart.time")} `), timeFrom, timeTo, timeLabel, timeReset),
  );

  function refreshStatus(): void {
    const v = chart.visible();
    status.textContent = t("chart.counts", { nodes: chart.cy.nodes().length, edges: chart.cy.edges().length,
      vn: v.nodes.length, ve: v.edges.length }) + (chart.truncated ? ` · ${t("chart.truncated")}` : "");
    status.dataset.visibleNodes = String(v.nodes.length);
  }

  const preparePrint = () => {
    printImg.src = chartPngDataUrl(chart.cy);
    printFoot.textContent = t("lead.printed_at", { at: new Date().toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB"),
      user: session.user });
  };
  printBtn.addEventListener("click", () => {
    preparePrint();
    window.print();
  });
  const onBeforePrint = () => preparePrint();
  window.addEventListener("beforeprint", onBeforePrint);
  handle.destroy = () => {
    window.removeEventListener("beforeprint", onBeforePrint);
    document.removeEventListener("pointerdown", closeResults);
    chart.destroy();
  };
  handle.snapshotNow = () => ({ leadId: lead.lead_id, chart: chart.snapshot(), layout: layoutName });

  setupTime();
  refreshStatus();
  chart.cy.resize();
  if (!snap) await chart.layout(layoutName);
  refreshStatus();
  root.querySelector(".lead-view")?.setAttribute("data-ready", "true");
}

function caseSection(lead: LeadDetail, session: Session, canAct: boolean, reload: () => void): HTMLElement {
  const sec = h("div", { class: "case no-print", id: "case-section" }, h("h3", {}, t("lead.case")));
  if (canAct) {
    const next = TRANSITIONS[lead.status] ?? [];
    const sel = h("select", { id: "status-select" },
      ...next.map((s) => h("option", { value: s }, `${t(`status.${lead.status}`)} → ${t(`status.${s}`)}`)));
    const comment = h("input", { type: "text", id: "status-comment", placeholder: t("lead.comment") });
    const save = h("button", { class: "primary small", id: "status-save" }, t("lead.save_status"));
    save.addEventListener("click", async () => {
      save.disabled = true;
      try {
        await api.setStatus(lead.lead_id, sel.value, comment.value.trim());
        toast(t("lead.saved"));
        reload();
      } catch (e) {
        toast(e instanceof ApiError && e.status === 403 ? t("err.forbidden") : t("err.generic",
          { msg: (e as Error).message }), "error");
        save.disabled = false;
      }
    });
    const note = h("textarea", { id: "note-text", rows: 2, placeholder: t("lead.note_ph") });
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
        toast(t("err.generic", { msg: (e as Error).message }), "error");
        addNote.disabled = false;
      }
    });
    const assignee = h("input", { type: "text", id: "assignee-input", value: lead.assignee ?? session.user,
      maxlength: 64 });
    const assign = h("button", { class: "small", id: "assign-save" }, t("lead.assign"));
    assign.addEventListener("click", async () => {
      assign.disabled = true;
      try {
        await api.assign(lead.lead_id, assignee.value.trim() || null);
        toast(t("lead.saved"));
        reload();
      } catch (e) {
        toast(t("err.generic", { msg: (e as Error).message }), "error");
        assign.disabled = false;
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

function evidenceTable(lead: LeadDetail, select: (mdtrt: string) => void): HTMLElement {
  const rows = lead.evidence_visits ?? [];
  const total = Math.max(rows.length, lead.evidence?.length ?? 0);
  const table = h("table", { class: "evidence", id: "evidence-table" },
    h("thead", {}, h("tr", {},
      ...["mdtrt_id", "begntime", "endtime", "med_type", "psn_no", "fixmedins_code", "atddr_no", "dise"].map((k) =>
        h("th", {}, t(`ev.${k}`))),
      h("th", { class: "num" }, t("ev.medfee_sumamt")), h("th", { class: "num" }, t("ev.fund_pay_sumamt")))),
    h("tbody", {}, ...rows.map((v, i) => h("tr", { class: i >= PRINT_ROWS ? "ev-row print-hide" : "ev-row",
      "data-mdtrt-id": v.mdtrt_id, onclick: () => select(v.mdtrt_id) },
    h("td", {}, h("code", {}, v.mdtrt_id)), h("td", {}, dt(v.begntime)), h("td", {}, dt(v.endtime)),
    h("td", {}, medTypeLabel(v.med_type)), h("td", {}, v.psn_no ?? ""), h("td", {}, v.fixmedins_code ?? ""),
    h("td", {}, v.atddr_no ?? ""), h("td", { title: v.dise_codg ?? "" }, v.dise_name || v.dise_codg || ""),
    h("td", { class: "num" }, money(v.medfee_sumamt)), h("td", { class: "num" }, money(v.fund_pay_sumamt))))));
  const sum = rows.reduce((acc, v) => acc + (Number(v.fund_pay_sumamt) || 0), 0);
  return h("section", { class: "evidence-wrap" },
    h("h2", {}, t("lead.evidence_n", { n: num(total) }), h("small", { class: "muted" },
      `  ${day(lead.period_start)} – ${day(lead.period_end)} · ${t("ev.fund_pay_sumamt")} ${money(sum)}`)),
    h("div", { class: "table-wrap" }, table),
    rows.length > PRINT_ROWS ? h("p", { class: "print-only muted" },
      t("lead.print_more", { shown: PRINT_ROWS, n: rows.length })) : null);
}
