// Lead view: composes its sections (header, summary and case, chart with toolbar, legend and timeline, entity
// panel, case file, evidence table, print) around one LinkChart.

import type { NodeSingular } from "cytoscape";
import { api, ApiError, asList, type CaseFile, type GNode, type LeadDetail } from "./api";
import { BIG_CHART, LinkChart, yieldTask, type ChartSnapshot, type LayoutName } from "./chart";
import { clear, download, h, toast } from "./dom";
import { renderEdgeInfo, renderEntity, renderEntityHint, setEvidenceRows } from "./entity";
import { chartPngDataUrl, downloadGraphml, downloadPngFramed, downloadSvg } from "./export";
import { CHART_TYPES, swatchSvg } from "./icons";
import { kindLabel, lang, t } from "./i18n";
import { casePanel } from "./lead/casefile";
import { caseSection, evidenceTable, explanationOf, figuresList, leadHeader, memberList,
  type Session } from "./lead/info";
import { legend } from "./lead/legend";
import { timelineStrip } from "./lead/timeline";
import { statusBadge } from "./queue";

export type { Session } from "./lead/info";

export interface LeadViewHandle {
  chart: LinkChart | null;
  /** Set before re-rendering the same lead (language switch) to keep the chart as the analyst left it. */
  snapshot?: { leadId: string; chart: ChartSnapshot; layout: string } | null;
  snapshotNow?: () => { leadId: string; chart: ChartSnapshot; layout: string };
  destroy: () => void;
}

/** Scheme leads open in the evidence layout (bands by role); other leads force-directed. */
function defaultLayout(kind: string): LayoutName {
  return ["collusion_ring", "card_skimming", "drug_resale"].includes(kind) ? "layered" : "fcose";
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

/** Screen-reader messages (chart focus, saves, counts). */
function liveRegion(): { element: HTMLElement; say: (m: string) => void } {
  const element = h("div", { class: "sr-only", id: "chart-live", "aria-live": "polite", role: "status" });
  return { element, say: (m: string) => { element.textContent = m; } };
}

export async function renderLead(root: HTMLElement, leadId: string, session: Session,
  go: (hash: string) => void, handle: LeadViewHandle, params: Record<string, string> = {}): Promise<void> {
  clear(root);
  root.append(h("p", { class: "muted pad" }, t("chart.loading")));
  const caseId = params.case && /^CF[0-9A-F]{16}$/.test(params.case) ? params.case : null;
  const [lead, graph, caseFile] = await Promise.all([api.lead(leadId), api.leadChart(leadId),
    caseId ? api.caseFile(caseId, params.v ? Number(params.v) : undefined) : Promise.resolve(null as CaseFile | null)]);
  const firstDraw = performance.now();
  const mark = (name: string) => performance.mark(`lead:${name}`);
  mark("data");
  clear(root);
  const canAct = session.role === "admin" || session.role === "investigator";
  setEvidenceRows(lead.evidence_visits ?? []);
  const live = liveRegion();

  // ---- header and summary ----
  const printBtn = h("button", { class: "ghost", id: "print-lead" }, t("lead.print"));
  const head = leadHeader(lead, printBtn);
  let chart: LinkChart;
  const find = (code: string) => chart?.find(code);
  const info = h("aside", { class: "lead-info", id: "lead-info", "aria-label": t("lead.summary") },
    h("h2", {}, t("lead.summary")),
    h("p", { class: "explanation", id: "lead-explanation" }, explanationOf(lead)),
    h("h3", {}, t("lead.figures")), figuresList(lead),
    h("h3", {}, t("lead.members")),
    memberList(t("lead.persons"), "Person", lead.persons, find),
    memberList(t("lead.practitioners"), "Practitioner", lead.practitioners, find),
    memberList(t("lead.institutions"), "Institution", lead.institutions, find),
    caseSection(lead, session, canAct, () => void reloadCase()),
  );

  async function reloadCase(): Promise<void> {
    const fresh = await api.lead(leadId);
    Object.assign(lead, fresh);
    info.querySelector(".case")?.replaceWith(caseSection(lead, session, canAct, () => void reloadCase()));
    const fig = info.querySelector("[data-figure=assignee]");
    if (fig) fig.textContent = lead.assignee ?? t("lead.none");
    head.querySelector(".status")?.replaceWith(statusBadge(lead.status));
  }

  // ---- chart area ----
  const cyBox = h("div", { id: "cy", class: "cy" });
  const status = h("div", { class: "chart-status", id: "chart-status", "aria-live": "polite" });
  const bigNote = h("p", { class: "big-note muted", id: "big-note", hidden: true });
  const entityPanel = h("aside", { class: "entity-panel", id: "entity-panel", "aria-label": t("entity.title") });
  renderEntityHint(entityPanel);
  const lg = legend();
  const chartArea = h("section", { class: "chart-area", "aria-label": t("chart.roledesc") }, cyBox, status);
  const evidenceSection = evidenceTable(lead, (mdtrt) => chart.find(mdtrt));
  const printImg = h("img", { id: "print-chart", class: "print-only", alt: t("chart.roledesc") });
  const printFoot = h("p", { class: "print-only muted", id: "print-foot" });

  const side = h("div", { class: "side" }, entityPanel);
  root.append(h("section", { class: "lead-view", "data-lead-id": lead.lead_id, "data-kind": lead.kind },
    head,
    h("div", { class: "lead-grid" }, info, chartArea, side),
    printImg, lg.element, evidenceSection, printFoot, live.element));
  chart = new LinkChart({
    container: cyBox,
    members: memberIds(lead),
    announce: live.say,
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
  let layoutName = (handle.snapshot?.layout as LayoutName | undefined) ?? (caseFile?.state?.layout as LayoutName | undefined)
    ?? defaultLayout(lead.kind);
  const cases = casePanel(lead.lead_id, `${kindLabel(lead.kind)} ${lead.lead_id}`, session, chart, () => layoutName,
    live.say);
  side.append(cases.element);

  const snap = handle.snapshot?.leadId === lead.lead_id ? handle.snapshot : null;
  handle.snapshot = null;
  // A big chart is not drawn until its evidence layout is done and its elements are styled, a slice per task: a
  // frame drawn in between (after a yield) styled and measured every node at the origin, then again once laid
  // out, and styling all of them in the first frame was the longest task of the opening.
  const holdDrawing = !snap && graph.nodes.length > BIG_CHART;
  if (snap) chart.restore(snap.chart);
  else chart.add(graph, { core: true });
  if (holdDrawing) chart.cy.startBatch();  // (same task as the add: no frame in between)
  // Groups (communities) are drawn as frames by the evidence layout, whatever the lead's kind.
  if (!snap && chart.grouped && !caseFile?.state?.layout) layoutName = "layered";
  if (chart.heldCount()) {
    bigNote.hidden = false;
    bigNote.textContent = t("chart.big", { shown: chart.cy.nodes().length, held: chart.heldCount() });
  }

  // ---- toolbar ----
  const layoutSel = h("select", { id: "layout-select", "aria-label": t("chart.layout_label") },
    ...(["layered", "fcose", "dagre", "breadthfirst", "concentric"] as LayoutName[]).map((n) =>
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
  const present = new Set(chart.cy.nodes().map((n) => String(n.data("type"))));
  const typeFilter = h("fieldset", { class: "type-filter", id: "type-filter" },
    h("legend", { class: "sr-only" }, t("chart.types")),
    ...CHART_TYPES.filter((type) => present.has(type) || ["Person", "Practitioner", "Institution", "Visit"].includes(type))
      .map((type) => {
        const box = h("input", { type: "checkbox", checked: chart.typeVisible(type), "data-type": type });
        box.addEventListener("change", () => chart.setTypeVisible(type, box.checked));
        return h("label", { class: "type-opt" }, box, swatchSvg(type, 16), h("span", {}, t(`type.${type}`)));
      }));
  const exportSel = h("select", { id: "export-select", "aria-label": t("chart.export_label") },
    h("option", { value: "" }, `⤓ ${t("chart.export")}`),
    h("option", { value: "png" }, t("chart.png")),
    h("option", { value: "svg" }, t("chart.svg")),
    h("option", { value: "graphml" }, t("chart.graphml")),
    h("option", { value: "pdf" }, t("chart.pdf")),
    h("option", { value: "anx" }, t("chart.anx")));
  const base = `fraudnet-${lead.lead_id}`;
  const serverExport = async (format: string) => {
    const state = chart.state(cases.notes(), layoutName);
    const current = cases.current();
    const file = current
      ? await api.exportCaseFile(current.casefile_id, format)
      : await api.exportChart({ lead_id: lead.lead_id, title: `${kindLabel(lead.kind)} ${lead.lead_id}`, state, format });
    download(file.name, file.blob);
  };
  exportSel.addEventListener("change", () => {
    const what = exportSel.value;
    exportSel.value = "";
    const run = async () => {
      // Title, lead id, date and user above the chart, the legend below it (PNG and SVG).
      const frame = () => {
        const types = [...new Set(chart.visible().nodes.map((n) => String(n.data("type"))))];
        return {
          lines: [`${kindLabel(lead.kind)} · ${lead.lead_id}`, explanationOf(lead).length > 90 ? `${explanationOf(lead).slice(0, 89)}…` : explanationOf(lead),
            t("lead.printed_at", { at: new Date().toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB"),
              user: session.user })],
          legend: types.map((ty) => ({ type: ty, label: t(`type.${ty}`) })),
        };
      };
      // (The chart image is taken synchronously, before the first await: inside withDetail.)
      if (what === "png") await chart.withDetail(() => downloadPngFramed(chart.cy, base, frame()));
      else if (what === "svg") downloadSvg(chart, base, frame());
      // GraphML as drawn for roles that see personal data; viewers get the server's file with opaque ids.
      else if (what === "graphml" && canAct) downloadGraphml(chart, base);
      else if (what) await serverExport(what);
    };
    run().catch((e) => toast(t("err.generic", { msg: (e as Error).message }), "error"));
  });

  // search: in chart first, then the server
  const searchBox = h("input", { type: "search", id: "chart-search", placeholder: t("chart.search"),
    "aria-label": t("chart.search_label") });
  const results = h("div", { class: "search-results", id: "search-results", hidden: true, role: "listbox",
    "aria-label": t("chart.search_label") });
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
              chart.separate();
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

  const timeline = timelineStrip(chart, (lead.evidence_visits ?? []).map((v) => ({ id: v.mdtrt_id, at: v.begntime ?? null })));
  const layoutBtn = h("button", { class: "small", id: "relayout", "aria-label": t("chart.relayout"),
    title: t("chart.relayout"), onclick: () => void chart.layout(layoutName) }, "↻");
  chartArea.prepend(
    h("div", { class: "chart-toolbar", role: "toolbar", "aria-label": t("chart.roledesc") },
      h("label", {}, `${t("chart.layout")} `, layoutSel), layoutBtn,
      h("button", { class: "small", id: "fit", onclick: () => chart.fit() }, t("chart.fit")),
      evBtn,
      h("button", { class: "small ghost", id: "unhide", onclick: () => chart.unhideAll() }, t("chart.unhide")),
      h("div", { class: "search" }, searchBox, results),
      exportSel),
    typeFilter, bigNote,
  );
  chartArea.append(timeline.element);

  function refreshStatus(): void {
    const v = chart.visible();
    status.textContent = t("chart.counts", { nodes: chart.cy.nodes().length, edges: chart.cy.edges().length,
      vn: v.nodes.length, ve: v.edges.length }) + (chart.truncated ? ` · ${t("chart.truncated")}` : "");
    status.dataset.visibleNodes = String(v.nodes.length);
  }

  const preparePrint = () => {
    printImg.src = chart.withDetail(() => chartPngDataUrl(chart.cy));
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

  timeline.setup();
  refreshStatus();
  chart.cy.resize();
  // First draw: the nodes in a quick grid by type, so the page shows something before the layout runs.
  // A grouped big chart skips it: its evidence layout is linear and the grid of compound nodes cost as much.
  await yieldTask();
  if (!snap && !chart.grouped && layoutName !== "layered" && chart.cy.nodes().length > BIG_CHART / 2) {
    chart.cy.layout({ name: "grid", fit: true, avoidOverlap: true, padding: 30,
      sort: (a: NodeSingular, b: NodeSingular) => String(a.data("type")).localeCompare(String(b.data("type"))) } as
      cytoscape.LayoutOptions).run();
    await new Promise((r) => requestAnimationFrame(() => r(null)));
  }
  let drawn = performance.now();
  try {
    if (!snap) await chart.layout(layoutName);
    if (holdDrawing) await chart.prestyle();
  } finally {
    if (holdDrawing) chart.cy.endBatch();
  }
  if (layoutName === "layered") {
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    drawn = performance.now();
  }
  // A reload keeps the chart as it was left in this tab (expansions, positions, pins, hides, notes).
  const draftKey = `fraudnet.chart.${lead.lead_id}`;
  const draft = !caseFile && !snap ? sessionStorage.getItem(draftKey) : null;
  if (draft) {
    try {
      await chart.applyState(JSON.parse(draft));
    } catch {
      sessionStorage.removeItem(draftKey);
    }
  }
  const keepDraft = () => {
    try {
      sessionStorage.setItem(draftKey, JSON.stringify(chart.state(cases.notes(), layoutName)));
    } catch {
      /* storage full: the draft is a convenience */
    }
  };
  window.addEventListener("pagehide", keepDraft);
  const destroyView = handle.destroy;
  handle.destroy = () => {
    keepDraft();
    window.removeEventListener("pagehide", keepDraft);
    destroyView();
  };
  if (caseFile?.state) {
    await chart.applyState(caseFile.state);
    cases.show(caseFile);
    timeline.setup();
    live.say(t("case.opened", { id: caseFile.casefile_id, v: caseFile.version ?? caseFile.latest_version }));
  }
  lg.update(chart);
  refreshStatus();
  const interactive = performance.now();
  const view = root.querySelector(".lead-view") as HTMLElement | null;
  if (view) {
    view.dataset.firstDrawMs = String(Math.round(drawn - firstDraw));
    view.dataset.interactiveMs = String(Math.round(interactive - firstDraw));
    view.setAttribute("data-ready", "true");
  }
}
