// Entity panel: the clicked node's actions (expand, collapse, hide, pin), profile, risk, visit timeline, leads.

import type { EdgeSingular, NodeSingular } from "cytoscape";
import { api, asList, type EvidenceVisit, type LeadSummary } from "./api";
import type { LinkChart } from "./chart";
import { append, clear, dt, h, money, num, toast } from "./dom";
import { fieldName, fieldValue, HIDDEN_PROPS, relName } from "./features";
import { swatchSvg } from "./icons";
import { kindLabel, medTypeLabel, t } from "./i18n";
import { severityBadge } from "./queue";

const ENTITY_TYPES = new Set(["Person", "Practitioner", "Institution", "Pharmacy", "Drug", "Phone", "Address"]);
let seq = 0;
let pathStart: { id: string; label: string } | null = null;

/** Fields in words with decoded values (性别 女 (2), 险种 城乡居民…); hashed keys and repeats left out. */
function kv(obj: Record<string, unknown>): HTMLElement {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || v === undefined || v === "" || HIDDEN_PROPS.has(k)) continue;
    dl.append(h("dt", { "data-field": k }, fieldName(k)), h("dd", {}, fieldValue(k, v)));
  }
  return dl;
}

/** Annotation box of a node or link (kept in the case file). */
function noteBox(el: NodeSingular | EdgeSingular, onChange?: () => void): HTMLElement {
  const area = h("textarea", { id: "annotation-text", rows: 2, "aria-label": t("node.note") });
  area.value = String(el.data("note") ?? "");
  const save = h("button", { class: "small", id: "annotation-save" }, t("node.note_save"));
  save.addEventListener("click", () => {
    el.data("note", area.value.trim() || null);
    toast(t("lead.saved"));
    onChange?.();
  });
  return h("div", { class: "annotation" }, h("h3", {}, t("node.note")), area, save);
}

let visitsById = new Map<string, EvidenceVisit>();
/** The lead's evidence rows, for the visit list of a summarised link. */
export function setEvidenceRows(rows: EvidenceVisit[]): void {
  visitsById = new Map(rows.map((v) => [v.mdtrt_id, v]));
}

function topKinds(v: unknown): string {
  if (Array.isArray(v)) {
    return v.map((x) => typeof x === "string" ? kindLabel(x) : Array.isArray(x) ? `${kindLabel(String(x[0]))} ×${x[1]}`
      : `${kindLabel(String((x as Record<string, unknown>).kind))} ×${(x as Record<string, unknown>).count ?? ""}`)
      .join("、");
  }
  if (v && typeof v === "object") {
    return Object.entries(v as Record<string, unknown>).map(([k, c]) => `${kindLabel(k)} ×${c}`).join("、");
  }
  return "";
}

export function renderEntityHint(root: HTMLElement): void {
  clear(root);
  root.append(h("h2", {}, t("entity.title")), h("p", { class: "hint" }, t("entity.hint")));
}

export async function renderEntity(root: HTMLElement, node: NodeSingular, chart: LinkChart,
  openLead: (id: string) => void, refresh: () => void): Promise<void> {
  const my = ++seq;
  clear(root);
  const type = node.data("type") as string;
  const id = node.id();
  const expandBtn = h("button", { class: "small", "data-action": "expand" }, t("node.expand"));
  expandBtn.addEventListener("click", async () => {
    expandBtn.disabled = true;
    try {
      const added = await chart.expand(id);
      toast(t("node.added", { n: added.length }));
      refresh();
      if (my === seq) void renderEntity(root, node, chart, openLead, refresh);
    } catch (e) {
      toast(t("err.generic", { msg: (e as Error).message }), "error");
    } finally {
      expandBtn.disabled = false;
    }
  });
  const pinned = node.hasClass("pinned");
  const canExpand = ENTITY_TYPES.has(type);
  const actions = h("div", { class: "node-actions" }, canExpand ? expandBtn : null,
    canExpand ? h("button", { class: "small", "data-action": "collapse", disabled: !chart.isExpanded(id),
      onclick: () => {
        chart.collapse(id);
        refresh();
        void renderEntity(root, node, chart, openLead, refresh);
      } }, t("node.collapse")) : null,
    h("button", { class: "small", "data-action": "hide", onclick: () => { chart.hide([id]); refresh(); } },
      t("node.hide")),
    h("button", { class: "small", "data-action": "pin", onclick: () => {
      chart.togglePin(id);
      void renderEntity(root, node, chart, openLead, refresh);
    } }, pinned ? t("node.unpin") : t("node.pin")),
  );
  if (ENTITY_TYPES.has(type)) {
    actions.append(h("button", { class: "small ghost", "data-action": "path-start", onclick: () => {
      pathStart = { id, label: String(node.data("label") ?? id) };
      void renderEntity(root, node, chart, openLead, refresh);
    } }, t("node.path_start")));
    if (pathStart && pathStart.id !== id) {
      const from = pathStart;
      const btn = h("button", { class: "small", "data-action": "path-to" }, t("node.path_to", { from: from.label }));
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        try {
          const n = await chart.addPaths(from.id, id);
          toast(n ? t("node.paths_found", { n }) : t("node.no_path"), n ? "info" : "error");
          refresh();
        } catch (e) {
          toast(t("err.generic", { msg: (e as Error).message }), "error");
        } finally {
          btn.disabled = false;
        }
      });
      actions.append(btn);
    }
  }
  root.append(
    h("h2", {}, t("entity.title")),
    h("div", { class: "entity-head" }, swatchSvg(type, 22),
      h("div", {}, h("div", { class: "entity-label", "data-node-id": id }, String(node.data("label") ?? "")),
        h("div", { class: "muted" }, t(`type.${type}`), ENTITY_TYPES.has(type) && !["Phone", "Address"].includes(type)
          ? h("span", {}, " · ", h("code", {}, String(node.data("key")))) : null))),
    actions,
    noteBox(node),
  );
  if (!ENTITY_TYPES.has(type)) {
    root.append(h("h3", {}, t("entity.profile")), kv((node.data("props") ?? {}) as Record<string, unknown>));
    return;
  }
  const body = h("div", { class: "entity-body" }, h("p", { class: "muted" }, t("chart.loading")));
  root.append(body);
  try {
    const [info, timeline, leads] = await Promise.all([
      api.entity(id),
      api.timeline(id, 60).catch(() => []),
      api.entityLeads(id).catch(() => []),
    ]);
    if (my !== seq) return;
    clear(body);
    const risk = info.risk ?? { score: null, leads: 0, amount_at_risk: 0, top_kinds: [] };
    body.append(
      h("h3", {}, t("entity.risk")),
      h("div", { class: "risk" },
        h("div", { class: "risk-bar" }, h("span", { style: `width:${Math.round((risk.score ?? 0) * 100)}%` })),
        h("dl", { class: "kv" },
          h("dt", {}, t("entity.risk_score")), h("dd", {}, risk.score === null ? "–" : risk.score.toFixed(2)),
          h("dt", {}, t("entity.leads")), h("dd", {}, num(risk.leads)),
          h("dt", {}, t("lead.amount")), h("dd", {}, money(risk.amount_at_risk)),
          h("dt", {}, t("entity.top_kinds")), h("dd", {}, topKinds(risk.top_kinds)))),
      h("h3", {}, t("entity.profile")), kv(info.profile?.props ?? {}),
      h("h3", {}, t("entity.stats")), kv(info.profile?.stats ?? {}),
    );
    const leadList = asList<LeadSummary>(leads, "leads");
    body.append(h("h3", {}, t("entity.leads")));
    if (!leadList.length) body.append(h("p", { class: "muted" }, t("entity.no_leads")));
    else {
      body.append(h("ul", { class: "entity-leads" }, ...leadList.slice(0, 30).map((l) =>
        h("li", {}, h("a", { href: `#/lead/${encodeURIComponent(l.lead_id)}`, onclick: (ev: Event) => {
          ev.preventDefault();
          openLead(l.lead_id);
        } }, severityBadge(l.severity, true), " ", kindLabel(l.kind), " ", h("small", {}, money(l.amount_at_risk)))))));
    }
    const events = asList<EvidenceVisit>(timeline, "events", "timeline", "visits");
    body.append(h("h3", {}, `${t("entity.timeline")} (${events.length})`));
    if (!events.length) body.append(h("p", { class: "muted" }, t("entity.no_visits")));
    else {
      body.append(h("table", { class: "timeline" },
        h("thead", {}, h("tr", {}, h("th", {}, t("ev.begntime")), h("th", {}, t("ev.med_type")),
          h("th", {}, t("ev.fixmedins_code")), h("th", { class: "num" }, t("ev.fund_pay_sumamt")))),
        h("tbody", {}, ...events.map((e) => h("tr", { class: chart.cy.getElementById(`Visit:${e.mdtrt_id}`).nonempty()
          ? "in-chart" : "" },
        h("td", { title: e.mdtrt_id }, dt(e.begntime)), h("td", {}, medTypeLabel(e.med_type)),
        h("td", {}, e.fixmedins_code ?? ""), h("td", { class: "num" }, money(e.fund_pay_sumamt)))))));
    }
  } catch (e) {
    if (my !== seq) return;
    clear(body);
    body.append(h("p", { class: "error" }, t("err.generic", { msg: (e as Error).message })),
      kv((node.data("props") ?? {}) as Record<string, unknown>));
  }
}

/** An edge's figures: type, both ends, visits, amount and time span, and its properties. */
export function renderEdgeInfo(root: HTMLElement, edge: EdgeSingular): void {
  seq++;
  clear(root);
  const end = (n: NodeSingular) => h("div", { class: "entity-head" }, swatchSvg(n.data("type"), 16),
    h("span", {}, String(n.data("label") ?? ""), " ", h("small", { class: "muted" }, String(n.data("key")))));
  const props = (edge.data("props") ?? {}) as Record<string, unknown>;
  const ids = Array.isArray(props.visit_ids) ? (props.visit_ids as string[]) : [];
  append(root,
    h("h2", {}, t("edge.title")),
    h("div", { class: "edge-type", "data-edge-id": edge.id(), "data-edge-type": edge.data("type") },
      h("strong", {}, relName(String(edge.data("type"))))),
    end(edge.source()), h("div", { class: "muted", "aria-hidden": "true" }, "↓"), end(edge.target()),
    typeof props.summary_zh === "string" ? h("p", { class: "edge-summary" },
      String(document.documentElement.lang.startsWith("zh") ? props.summary_zh : props.summary_en)) : null,
    h("h3", {}, t("entity.stats")),
    h("dl", { class: "kv" },
      h("dt", {}, t("edge.visits")), h("dd", {}, num(edge.data("visits"))),
      h("dt", {}, t("edge.amount")), h("dd", {}, money(edge.data("amount"))),
      h("dt", {}, t("edge.first")), h("dd", {}, dt(edge.data("first"))),
      h("dt", {}, t("edge.last")), h("dd", {}, dt(edge.data("last")))),
    kv(props),
    noteBox(edge),
  );
  if (ids.length) {
    const rows = ids.map((id) => visitsById.get(id) ?? { mdtrt_id: id } as EvidenceVisit);
    root.append(h("h3", {}, t("edge.visit_list", { n: ids.length })),
      h("table", { class: "timeline", id: "edge-visits" },
        h("thead", {}, h("tr", {}, h("th", {}, t("ev.begntime")), h("th", {}, t("ev.med_type")),
          h("th", {}, t("ev.fixmedins_code")), h("th", { class: "num" }, t("ev.fund_pay_sumamt")))),
        h("tbody", {}, ...rows.map((v) => h("tr", { "data-mdtrt-id": v.mdtrt_id },
          h("td", { title: v.mdtrt_id }, dt(v.begntime)), h("td", {}, medTypeLabel(v.med_type)),
          h("td", {}, v.fixmedins_code ?? ""), h("td", { class: "num" }, money(v.fund_pay_sumamt)))))));
  }
}
