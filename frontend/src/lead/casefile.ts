// Case-file panel of the lead view: save the chart as a case file (new versions after), its link, sharing, and
// the case files of this lead. Opening one is the route `#/lead/<id>?case=<CF…>[&v=<n>]`.

import { api, ApiError, type CaseFile } from "../api";
import type { LinkChart } from "../chart";
import { clear, dt, h, toast } from "../dom";
import { t } from "../i18n";
import type { Session } from "./info";

export interface CasePanel {
  element: HTMLElement;
  notes: () => string;
  current: () => CaseFile | null;
  show: (cf: CaseFile) => void;
}

export function caseLink(leadId: string, cid: string, version?: number): string {
  return `#/lead/${encodeURIComponent(leadId)}?case=${cid}${version ? `&v=${version}` : ""}`;
}

export function casePanel(leadId: string, leadTitle: string, session: Session, chart: LinkChart,
  layout: () => string, announce: (m: string) => void): CasePanel {
  const canAct = session.role === "admin" || session.role === "investigator";
  let current: CaseFile | null = null;
  const title = h("input", { type: "text", id: "case-title", value: leadTitle, maxlength: 200,
    "aria-label": t("case.title_ph"), placeholder: t("case.title_ph") });
  const notes = h("textarea", { id: "case-notes", rows: 3, "aria-label": t("case.notes"), placeholder: t("case.notes") });
  notes.readOnly = !canAct;
  const save = h("button", { class: "primary small", id: "case-save" }, t("case.save"));
  const link = h("a", { id: "case-link", class: "case-link", href: "#", hidden: true }, t("case.link"));
  const meta = h("p", { class: "muted", id: "case-meta" });
  const shareUsers = h("input", { type: "text", id: "case-share-users", placeholder: t("case.share_ph"),
    "aria-label": t("case.share") });
  const share = h("button", { class: "small", id: "case-share" }, t("case.share"));
  const shareRow = h("div", { class: "row", hidden: true }, shareUsers, share);
  const list = h("ul", { class: "case-list", id: "case-list", "aria-label": t("case.list") });

  const show = (cf: CaseFile) => {
    current = cf;
    title.value = cf.title;
    if (cf.state) notes.value = cf.state.notes ?? "";
    save.textContent = t("case.save_version");
    link.hidden = false;
    link.setAttribute("href", caseLink(leadId, cf.casefile_id));
    link.textContent = `${t("case.link")}: ${cf.casefile_id}`;
    const v = cf.versions?.find((x) => x.version === cf.version);
    meta.textContent = v ? t("case.version", { v: v.version, user: v.saved_by, at: dt(v.saved_at) }) : "";
    meta.dataset.version = String(cf.version ?? cf.latest_version);
    shareRow.hidden = !(session.role === "admin" || session.user === cf.owner);
    void refreshList();
  };

  const refreshList = async () => {
    try {
      const files = await api.caseFiles(leadId);
      clear(list);
      if (!files.length) list.append(h("li", { class: "muted" }, t("case.none")));
      for (const f of files) {
        list.append(h("li", {}, h("a", { href: caseLink(leadId, f.casefile_id), "data-casefile": f.casefile_id },
          `${f.title} · v${f.latest_version}`), h("small", { class: "muted" }, ` ${f.owner} · ${dt(f.updated_at)}`)));
      }
    } catch {
      /* the list is a convenience */
    }
  };

  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      const state = chart.state(notes.value, layout());
      const cf = current
        ? await api.saveCaseVersion(current.casefile_id, { state, title: title.value.trim() || null })
        : await api.createCaseFile({ lead_id: leadId, title: title.value.trim() || leadTitle, state });
      show(cf);
      history.replaceState(null, "", caseLink(leadId, cf.casefile_id));
      const msg = t("case.saved", { id: cf.casefile_id, v: cf.version ?? cf.latest_version });
      toast(msg);
      announce(msg);
    } catch (e) {
      toast(e instanceof ApiError && e.status === 403 ? t("err.forbidden") : t("err.generic",
        { msg: (e as Error).message }), "error");
    } finally {
      save.disabled = false;
    }
  });
  share.addEventListener("click", async () => {
    if (!current) return;
    const users = shareUsers.value.split(/[,，\s]+/).map((u) => u.trim()).filter(Boolean);
    if (!users.length) return;
    try {
      const cf = await api.shareCaseFile(current.casefile_id, users);
      show(cf);
      toast(t("case.shared", { users: cf.shared_with.join(", ") }));
    } catch (e) {
      toast(t("err.generic", { msg: (e as Error).message }), "error");
    }
  });

  const element = h("section", { class: "casefile no-print", id: "casefile-panel", "aria-label": t("case.title") },
    h("h3", {}, t("case.title")),
    canAct ? h("label", {}, t("case.title_ph"), title) : null,
    h("label", {}, t("case.notes"), notes),
    canAct ? save : null, meta, link, shareRow,
    h("h4", {}, t("case.list")), list);
  void refreshList();
  return { element, notes: () => notes.value, current: () => current, show };
}
