// Lead queue: filters (kind, severity, status, institution, person, dates, amount), sort, pages; click opens a lead.

import { api, asList, type LeadSummary } from "./api";
import { clear, day, h, money, num } from "./dom";
import { swatchSvg } from "./icons";
import { kindLabel, t } from "./i18n";

export const STATUSES = ["new", "reviewing", "confirmed", "dismissed", "referred"];
/** Allowed case transitions (as the claims store enforces them): new → reviewing → confirmed | dismissed | referred. */
export const TRANSITIONS: Record<string, string[]> = {
  new: ["reviewing"],
  reviewing: ["confirmed", "dismissed", "referred"],
  confirmed: ["reviewing", "referred"],
  dismissed: ["reviewing"],
  referred: ["reviewing"],
};
const SEVERITIES = ["red", "orange", "yellow"];
const SORTS = ["-priority", "-score", "score", "-expected_recovery", "-severity", "-amount_at_risk", "-period_end", "period_start"];
const PAGE_SIZE = 25;

export type QueueParams = Record<string, string>;

export function severityBadge(sev: string, short = false): HTMLElement {
  return h("span", { class: `sev sev-${sev}`, "data-severity": sev }, t(short ? `sev.short.${sev}` : `sev.${sev}`));
}

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: `status status-${status}`, "data-status": status }, t(`status.${status}`));
}

function kindsOf(data: unknown): Array<{ kind: string; count: number | null }> {
  const list = asList<unknown>(data, "kinds");
  if (list.length) {
    return list.map((k) => typeof k === "string" ? { kind: k, count: null }
      : { kind: String((k as Record<string, unknown>).kind), count: Number((k as Record<string, unknown>).count ?? 0) });
  }
  if (data && typeof data === "object") {
    return Object.entries(data as Record<string, unknown>).map(([kind, count]) => ({ kind, count: Number(count) }));
  }
  return [];
}

export async function renderQueue(root: HTMLElement, params: QueueParams, go: (hash: string) => void): Promise<void> {
  clear(root);
  const page = Math.max(1, Number(params.page || 1));
  const sort = params.sort || "-priority";
  const sevSel = new Set((params.severity ?? "").split(",").filter(Boolean));

  const navigate = (next: QueueParams) => {
    const q = new URLSearchParams(Object.entries(next).filter(([, v]) => v !== "" && v !== undefined));
    go(`#/queue${q.toString() ? `?${q}` : ""}`);
  };

  const kindSel = h("select", { name: "kind", "data-filter": "kind" }, h("option", { value: "" }, t("queue.kind.all")));
  const statusSel = h("select", { name: "status", "data-filter": "status" },
    h("option", { value: "" }, t("queue.status.all")),
    ...STATUSES.map((s) => h("option", { value: s, selected: params.status === s }, t(`status.${s}`))));
  const sortSel = h("select", { name: "sort", "data-filter": "sort" },
    ...SORTS.map((s) => h("option", { value: s, selected: s === sort }, t(`sort.${s}`))));
  const input = (name: string, type = "text", extra: Record<string, string> = {}) =>
    h("input", { name, type, value: params[name] ?? "", "data-filter": name, ...extra });
  const sevBoxes = SEVERITIES.map((s) => h("label", { class: `sevbox sev-${s}` },
    h("input", { type: "checkbox", name: "severity", value: s, checked: sevSel.has(s) }), t(`sev.short.${s}`)));

  const form = h("form", { class: "filters", id: "queue-filters" },
    h("label", {}, t("queue.kind"), kindSel),
    h("fieldset", { class: "sevset" }, h("legend", {}, t("queue.severity")), ...sevBoxes),
    h("label", {}, t("queue.status"), statusSel),
    h("label", {}, t("queue.institution"), input("institution", "text", { placeholder: "H…/P…" })),
    h("label", {}, t("queue.person"), input("person")),
    h("label", {}, t("queue.date_from"), input("date_from", "date")),
    h("label", {}, t("queue.date_to"), input("date_to", "date")),
    h("label", {}, t("queue.min_amount"), input("min_amount", "number", { min: "0", step: "100" })),
    h("label", {}, t("queue.sort"), sortSel),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary" }, t("queue.apply")),
      h("button", { type: "button", class: "ghost", onclick: () => navigate({}) }, t("queue.reset"))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const next: QueueParams = {};
    for (const name of ["kind", "status", "institution", "person", "date_from", "date_to", "min_amount", "sort"]) {
      const v = String(fd.get(name) ?? "").trim();
      if (v) next[name] = v;
    }
    const sev = fd.getAll("severity").map(String);
    if (sev.length) next.severity = sev.join(",");
    navigate(next);
  });
  for (const el of [kindSel, statusSel, sortSel, ...sevBoxes.map((b) => b.querySelector("input")!)]) {
    el.addEventListener("change", () => form.requestSubmit());
  }

  const summary = h("div", { class: "queue-summary" }, t("chart.loading"));
  const table = h("table", { class: "leads", id: "lead-table", "aria-label": t("queue.title") });
  const pager = h("div", { class: "pager" });
  root.append(h("section", { class: "queue" }, h("h1", {}, t("queue.title")), form, summary,
    h("div", { class: "table-wrap" }, table), pager));

  void api.leadKinds().then((data) => {
    for (const k of kindsOf(data)) {
      kindSel.append(h("option", { value: k.kind, selected: params.kind === k.kind },
        `${kindLabel(k.kind)}${k.count !== null ? ` (${num(k.count)})` : ""}`));
    }
  }).catch(() => {
    if (params.kind) kindSel.append(h("option", { value: params.kind, selected: true }, kindLabel(params.kind)));
  });

  const query: Record<string, string | number> = { sort, page, page_size: PAGE_SIZE };
  for (const k of ["kind", "severity", "status", "institution", "person", "date_from", "date_to", "min_amount"]) {
    if (params[k]) query[k] = params[k];
  }
  const data = await api.leads(query);
  summary.textContent = t("queue.total", { n: num(data.total) });

  const sortHead = (label: string, field: string) => {
    const active = sort === `-${field}` ? " ↓" : sort === field ? " ↑" : "";
    return h("th", { class: "sortable", "data-sort": field, onclick: () =>
      navigate({ ...params, sort: sort === `-${field}` ? field : `-${field}`, page: "1" }) }, label + active);
  };
  table.append(h("thead", {}, h("tr", {},
    h("th", {}, t("col.severity")), h("th", {}, t("col.kind")), sortHead(t("col.score"), "score"),
    h("th", {}, t("col.members")), h("th", { class: "num" }, t("col.evidence")),
    sortHead(t("col.amount"), "amount_at_risk"), sortHead(t("col.period"), "period_end"),
    h("th", {}, t("col.status")), h("th", {}, t("col.assignee")), h("th", {}, t("col.explanation")))));
  const body = h("tbody", {});
  if (!data.items.length) body.append(h("tr", {}, h("td", { colspan: 10, class: "empty" }, t("queue.empty"))));
  for (const lead of data.items) body.append(leadRow(lead, go));
  table.append(body);

  const pages = Math.max(1, Math.ceil(data.total / (data.page_size || PAGE_SIZE)));
  pager.append(
    h("button", { class: "ghost", disabled: page <= 1, onclick: () => navigate({ ...params, page: String(page - 1) }) },
      t("queue.prev")),
    h("span", {}, t("queue.page", { page, pages })),
    h("button", { class: "ghost", disabled: page >= pages,
      onclick: () => navigate({ ...params, page: String(page + 1) }) }, t("queue.next")),
  );
}

function members(lead: LeadSummary): HTMLElement {
  const parts: HTMLElement[] = [];
  const add = (type: string, list: string[]) => {
    if (!list?.length) return;
    parts.push(h("span", { class: "mem", title: list.join(", ") }, swatchSvg(type, 13), ` ${list.length}`,
      h("small", {}, ` ${list.slice(0, 2).join(", ")}${list.length > 2 ? "…" : ""}`)));
  };
  add("Person", lead.persons);
  add("Practitioner", lead.practitioners);
  add("Institution", lead.institutions);
  return h("div", { class: "members" }, ...parts);
}

function leadRow(lead: LeadSummary, go: (hash: string) => void): HTMLElement {
  const explanation = document.documentElement.lang.startsWith("zh") ? lead.explanation_zh : lead.explanation_en;
  const href = `#/lead/${encodeURIComponent(lead.lead_id)}`;
  // The row is clickable; the kind is a real link (middle-click / open in a new tab, keyboard focus).
  return h("tr", { class: `lead-row sev-row-${lead.severity}${lead.overdue ? " overdue-row" : ""}`,
    "data-lead-id": lead.lead_id, "data-kind": lead.kind,
    onclick: (ev: Event) => {
      if ((ev.target as HTMLElement).closest("a")) return;
      go(href);
    } },
  h("td", {}, severityBadge(lead.severity)),
  h("td", {}, h("a", { class: "lead-link", href }, kindLabel(lead.kind)), h("br", {}),
    h("code", { class: "lid" }, lead.lead_id),
    lead.response_due_at ? h("div", { class: lead.overdue ? "due overdue" : "due", "data-due": lead.response_due_at },
      `${t("lead.due")} ${day(lead.response_due_at)}${lead.overdue ? ` · ${t("lead.overdue")}` : ""}`) : null),
  h("td", { class: "num" }, lead.score.toFixed(2)),
  h("td", {}, members(lead)),
  h("td", { class: "num" }, num(lead.evidence_count)),
  h("td", { class: "num amount" }, money(lead.amount_at_risk)),
  h("td", { class: "period" }, `${day(lead.period_start)} – ${day(lead.period_end)}`),
  h("td", {}, statusBadge(lead.status)),
  h("td", {}, lead.assignee ?? ""),
  h("td", { class: "expl", title: explanation }, explanation),
  );
}
