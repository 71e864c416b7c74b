// The link chart: Cytoscape.js with typed looks, expand/collapse/hide/pin, type filter, time window, search.

import cytoscape from "cytoscape";
import type { Core, ElementDefinition, NodeSingular, EdgeSingular, StylesheetJson } from "cytoscape";
import fcose from "cytoscape-fcose";
import dagre from "cytoscape-dagre";
import { api, type GEdge, type GNode, type Subgraph } from "./api";
import { ms, num } from "./dom";
import { relName } from "./features";
import { lang, t } from "./i18n";
import { CHART_TYPES, EDGE_COLORS, ENTITY_TYPES, glyphUri, look } from "./icons";

cytoscape.use(fcose);
cytoscape.use(dagre);

const LOW_ZOOM = 0.35;
/** Above this many nodes a chart opens with the top nodes per type and "N more" handles for the rest. */
export const BIG_CHART = 400;
/** A big chart by community opens with about this many links per node drawn. */
const EDGE_BUDGET = 2.5;
const MORE_STEP = 150;
/** Up to this many summarised visit links are labelled on the chart; beyond, those of the selected nodes. */
const EDGE_LABELS = 12;

/** Label of a node in the user's language: synthetic recipe nodes are labelled from their figures. */
export function nodeLabel(n: GNode): string {
  const p = (n.props ?? {}) as Record<string, unknown>;
  if (n.type === "Occasion") return t("label.occasion", { date: String(p.date ?? ""), n: Number(p.persons ?? 0) });
  if (n.type === "Burst") {
    const at = String(p.start ?? "").replace("T", " ").slice(0, 16);
    return t("label.burst", { at, cards: Number(p.cards ?? 0), min: num(Number(p.minutes ?? 0)) });
  }
  if (n.type === "Operator") return t("label.operator", { id: String(p.opter_id ?? n.key) });
  if (n.type === "Drug" && p.quantity !== undefined) {
    return t("label.drug", { name: String(p.hilist_name ?? n.label ?? n.key), qty: num(Number(p.quantity)),
      days: num(Number(p.days_of_supply ?? 0)) });
  }
  if (n.type === "More") {
    return p.forType ? t("label.more", { n: Number(p.remaining ?? 0), type: t(`type.${p.forType}`) })
      : t("label.more_group", { n: Number(p.remaining ?? 0) });
  }
  return n.label ?? n.key;
}

/** Let the browser handle input and paint before the next step of a long piece of work. */
export function yieldTask(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Group labels of a big answer's communities: "<head's label> and N others" by the head the server named. */
function communityLabels(nodes: GNode[]): Map<string, string> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out = new Map<string, string>();
  for (const n of nodes) {
    const key = `c${n.props?.community}`;
    if (out.has(key)) continue;
    const head = byId.get(String(n.props?.community_head ?? ""));
    out.set(key, t("label.community", { head: head ? nodeLabel(head) : key, n: Number(n.props?.community_size ?? 0) }));
  }
  return out;
}

const SUMMARY_LABELS = new Set(["ADMITTED_AT", "SWIPED", "FILLED_AT", "OPERATES_AT", "VISITED"]);

/** Label drawn on a summarised visit link ("24 stays, 2025-02-10…06-03, ¥81,240"); single visits stay unlabelled. */
function edgeLabel(e: GEdge): string {
  const p = (e.props ?? {}) as Record<string, unknown>;
  const summary = lang() === "zh" ? p.summary_zh : p.summary_en;
  // Labelled: the links that carry a group of visits to a place or a time node (not every doctor link).
  if (typeof summary === "string" && (e.visits ?? 0) >= 2 && SUMMARY_LABELS.has(e.type)) return summary;
  if (e.type === "OBTAINED" && p.quantity !== undefined) {
    return lang() === "zh" ? `${num(Number(p.quantity))}单位/${num(Number(p.days_of_supply ?? 0))}天`
      : `${num(Number(p.quantity))} units/${num(Number(p.days_of_supply ?? 0))} d`;
  }
  return "";
}

/** The summary as drawn: one figure a line; from a time node (occasion, burst), whose label has the dates, without
 * them ("15次住院\n¥58,541"). */
function shownEdgeLabel(e: GEdge): string {
  const parts = edgeLabel(e).split(/，|, (?=\S)/);
  const timed = /^(Occasion|Burst):/.test(e.source) || /^(Occasion|Burst):/.test(e.target);
  return (timed && parts.length === 3 ? [parts[0], parts[2]] : parts).join("\n");
}

/** Score of a node for the top-N of a big chart: members and evidence first, then the money on its links. */
function nodeWeight(n: GNode, members: Set<string>, money: Map<string, number>): number {
  if (members.has(n.id) || n.props?.evidence === true) return Number.MAX_SAFE_INTEGER;
  return money.get(n.id) ?? 0;
}

export type LayoutName = "layered" | "fcose" | "dagre" | "breadthfirst" | "concentric";

/** Rows of the evidence ("layered") layout: shared contacts, persons, occasions/bursts, operators and doctors,
 * institutions and pharmacies, drugs. */
const ROW_OF: Record<string, number> = { Phone: 0, Address: 0, Person: 1, Visit: 2, Occasion: 2, Burst: 2, Operator: 3,
  Practitioner: 3, Institution: 4, Pharmacy: 4, Drug: 5, More: 6, Outside: 6 };
const COL_GAP = 92;
/** Wider columns for bands whose labels are long (places, time nodes, drugs). */
const BAND_GAP: Record<number, number> = { 0: 150, 2: 150, 3: 120, 4: 150, 5: 190 };
const ROW_GAP = 120;
const PER_ROW = 10;

/** Edges whose existence depends on one visit (hidden with it by the time window). */
const VISIT_EDGES = new Set(["HAD", "AT", "DISPENSED", "EVIDENCED_BY", "TREATED_BY"]);

export interface ChartEvents {
  onSelect?: (node: NodeSingular | null) => void;
  onSelectEdge?: (edge: EdgeSingular) => void;
  onChange?: () => void;
}

function edgeWidth(e: GEdge): number {
  const amount = Number(e.amount) || 0;
  if (amount > 0) return Math.min(12, 1 + 1.6 * Math.log10(1 + amount / 100));
  const times = Number(e.visits || (e.props?.times as number) || 0);
  return Math.min(6, 1 + 0.6 * Math.log2(1 + times));
}

function buildStyle(): StylesheetJson {
  const s: StylesheetJson = [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 10,
        "font-family": "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif",
        color: "#1d2733",
        "text-valign": "bottom",
        "text-margin-y": 3,
        "text-max-width": "110px",
        "text-wrap": "ellipsis",
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.75,
        "text-background-padding": "1px",
        "min-zoomed-font-size": 7,
        "background-fit": "none",
        "background-width": "62%",
        "background-height": "62%",
        "border-width": 1,
        "border-color": "#ffffff",
        "z-index-compare": "manual",
        "z-index": 20,
      },
    },
    {
      selector: "edge",
      style: {
        width: "data(w)",
        "font-size": 8,
        "text-rotation": "autorotate",
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.8,
        "text-background-padding": "1px",
        "min-zoomed-font-size": 7,
        color: "#374151",
        "line-color": "#9aa5b1",
        "curve-style": "straight",
        "target-arrow-shape": "triangle",
        "target-arrow-color": "#9aa5b1",
        "arrow-scale": 0.6,
        opacity: 0.85,
        label: "",
        "z-index-compare": "manual",
        "z-index": 10,
      },
    },
  ];
  for (const type of [...CHART_TYPES, "Lead", "More", "Outside"]) {
    const l = look(type);
    s.push({
      selector: `node[type = "${type}"]`,
      style: {
        "background-color": l.color,
        shape: l.shape as cytoscape.Css.NodeShape,
        width: l.size,
        height: l.size,
        "background-image": glyphUri(type),
      },
    });
  }
  s.push({ selector: 'node[type = "Visit"]', style: { "font-size": 8, "min-zoomed-font-size": 18 } });
  for (const [type, color] of Object.entries(EDGE_COLORS)) {
    s.push({ selector: `edge[type = "${type}"]`, style: { "line-color": color, "target-arrow-color": color } });
  }
  s.push(
    { selector: 'edge[type = "CO_ADMITTED"]', style: { "line-style": "dashed", "target-arrow-shape": "none" } },
    // Summaries of visit links: horizontal and wrapped (rotated along the line they were unreadable), drawn when
    // the chart has few of them or their node is selected (the panel lists them all).
    { selector: "edge.elabel-on", style: { label: "data(lbl)", "text-rotation": "none", "text-wrap": "wrap",
      "text-max-width": "140px", "font-size": 10, "text-background-opacity": 0.9, "text-background-padding": "2px",
      "text-background-shape": "roundrectangle", "text-border-width": 1, "text-border-color": "#d5dbe3",
      "text-border-opacity": 1, "z-index": 12 } },
    { selector: 'node[type = "More"]', style: { "border-width": 2, "border-style": "dashed", "border-color": "#334155",
      "font-weight": "bold" } },
    { selector: 'node[type = "Occasion"], node[type = "Burst"], node[type = "Drug"]', style: { "text-wrap": "wrap",
      "text-max-width": "130px" } },
    { selector: "node.kbd-focus", style: { "overlay-color": "#7c3aed", "overlay-opacity": 0.35, "overlay-padding": 8 } },
    { selector: "node[?risky]", style: { "border-width": 2, "border-color": "#fa8c16" } },
    { selector: "node.member", style: { "border-width": 3, "border-color": "#cf1322" } },
    { selector: "node.evidence", style: { "border-width": 3, "border-color": "#cf1322", "background-color": "#e8684a" } },
    { selector: "node.pinned", style: { "border-width": 4, "border-style": "double", "border-color": "#111827" } },
    { selector: "node.match", style: { "overlay-color": "#facc15", "overlay-opacity": 0.45, "overlay-padding": 6 } },
    { selector: "node:selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.25, "overlay-padding": 5 } },
    { selector: "edge:selected", style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb" } },
    { selector: "edge.path", style: { "line-color": "#f59e0b", "target-arrow-color": "#f59e0b", width: 6,
      "z-index": 11 } },
    { selector: "node.path", style: { "overlay-color": "#f59e0b", "overlay-opacity": 0.3, "overlay-padding": 6 } },
    { selector: ".faded", style: { opacity: 0.15, "text-opacity": 0 } },
    { selector: ".gone", style: { display: "none" } },
    { selector: ".frame-off", style: { display: "none" } },
    { selector: "edge.helper", style: { opacity: 0, events: "no" } },
    // Zoomed out (below LOW_ZOOM) no 10 px label is readable (min-zoomed-font-size): none is measured either, and
    // glyphs are off; the frames' group names grow to stay readable.
    { selector: "node.lowzoom", style: { "background-image": "none", "border-width": 0, label: "" } },
    { selector: "node.quiet", style: { label: "" } },
    // A big chart's groups are frames: plain nodes sized to their members' box and drawn under the links (z-index),
    // not compound nodes (with compound nodes Cytoscape re-dirties a group's members and links for every style
    // property it applies: half of a big chart's first frame).
    { selector: 'node[type = "Group"]', style: { shape: "round-rectangle", width: "data(w)", height: "data(h)",
      "background-color": "#eef2f7", "background-opacity": 0.6, "background-image": "none", "border-width": 1,
      "border-style": "dashed", "border-color": "#94a3b8", label: "data(label)", "text-valign": "top",
      "text-halign": "center", "text-margin-y": -4, "font-size": 14, "font-weight": "bold", color: "#334155",
      "text-max-width": "data(w)", "min-zoomed-font-size": 4, "z-index": 0, "overlay-opacity": 0 } },
    { selector: 'node[type = "Group"].frame-low', style: { "font-size": 44, "text-margin-y": -8 } },
    { selector: 'node[type = "More"].lowzoom', style: { label: "data(label)", "font-size": 36,
      "text-max-width": "420px" } },
    // Haystack lines (no control points, no arrows) for a big chart's links: edge projections were a third of its
    // first frame.
    { selector: "edge.quiet", style: { "target-arrow-shape": "none", "curve-style": "haystack", "haystack-radius": 0 } },
  );
  return s;
}

/** Everything needed to rebuild the chart as it was (used when the language is switched). */
export interface ChartSnapshot {
  elements: ElementDefinition[];
  zoom: number;
  pan: { x: number; y: number };
  expansions: Array<[string, string[]]>;
  typeOn: Array<[string, boolean]>;
  truncated: boolean;
}

export interface ChartOptions {
  container: HTMLElement;
  members: Set<string>; // lead member node ids
  events?: ChartEvents;
  /** Where messages for screen readers go (an aria-live region). */
  announce?: (message: string) => void;
}

/** A chart as a case file keeps it (ids, positions, flags and the analyst's words; never labels). */
export interface ChartState {
  nodes: Array<{ id: string; x: number; y: number; pinned: boolean; hidden: boolean; note?: string | null }>;
  edge_notes: Array<{ id: string; note: string }>;
  notes: string;
  layout: string | null;
  zoom: number | null;
  pan: { x: number; y: number } | null;
  time_window: string[] | null;
  lang: "zh" | "en";
}

/** A link chart bound to a container; all bulk updates go through `cy.batch`. */
export class LinkChart {
  readonly cy: Core;
  private events: ChartEvents;
  private members: Set<string>;
  private typeOn = new Map<string, boolean>(CHART_TYPES.map((t) => [t, true]));
  private windowMs: [number, number] | null = null;
  private expansions = new Map<string, string[]>();
  private focusEvidence = false;
  private pending = 0;
  private lowZoom = false;
  truncated = false;

  constructor(opts: ChartOptions) {
    this.events = opts.events ?? {};
    this.members = opts.members;
    this.cy = cytoscape({
      container: opts.container,
      style: buildStyle(),
      minZoom: 0.05,
      maxZoom: 4,
      textureOnViewport: true, // pan/zoom on a cached texture: ~10x cheaper frames at 2,000 elements
      boxSelectionEnabled: true,
    });
    this.cy.on("tap", "node", (ev) => {
      if (!LinkChart.isFrame(ev.target as NodeSingular)) this.events.onSelect?.(ev.target as NodeSingular);
    });
    // Dragging a frame moves its group; dropping a node re-fits the frames.
    let grabbed: { x: number; y: number } | null = null;
    this.cy.on("grab", 'node[type = "Group"]', (ev) => {
      grabbed = { ...(ev.target as NodeSingular).position() };
    });
    this.cy.on("drag", 'node[type = "Group"]', (ev) => {
      const f = ev.target as NodeSingular;
      if (!grabbed) return;
      const p = f.position();
      const d = { x: p.x - grabbed.x, y: p.y - grabbed.y };
      grabbed = { ...p };
      this.cy.batch(() => this.members_(String(f.data("key"))).forEach((n) => {
        if (!n.locked()) n.shift(d);
      }));
    });
    this.cy.on("free", 'node[type = "Group"]', () => {
      grabbed = null;
      this.updateFrames();
    });
    this.cy.on("dragfree", "node", (ev) => {
      if ((ev.target as NodeSingular).data("group")) this.updateFrames();
    });
    this.cy.on("tap", "edge", (ev) => this.events.onSelectEdge?.(ev.target as EdgeSingular));
    this.cy.on("select unselect", "node", () => this.refreshEdgeLabels());
    this.cy.on("tap", (ev) => {
      if (ev.target === this.cy) this.events.onSelect?.(null);
    });
    this.cy.on("dbltap", "node", (ev) => {
      void this.expand((ev.target as NodeSingular).id());
    });
    this.cy.on("tap", 'node[type = "More"]', (ev) => {
      this.showMore(String((ev.target as NodeSingular).data("props")?.forGroup ?? ""));
    });
    this.setupKeyboard(opts.container, opts.announce);
    // Zoomed far out, glyphs are unreadable and cost a draw each: switch them off once when crossing the
    // threshold (labels already disappear through min-zoomed-font-size), never per frame.
    this.cy.on("zoom", () => {
      const low = this.cy.zoom() < LOW_ZOOM;
      if (low !== this.lowZoom) {
        this.lowZoom = low;
        this.cy.batch(() => this.cy.nodes().forEach((n) => {
          n.toggleClass(LinkChart.isFrame(n) ? "frame-low" : "lowzoom", low);
        }));
      }
    });
  }

  destroy(): void {
    this.cy.destroy();
  }

  /** Style every element now, a slice per task (call while the chart's drawing is held in a batch): the first
   * frame then only measures and draws. */
  async prestyle(slice = 120): Promise<void> {
    const els = this.cy.elements();
    for (let i = 0; i < els.length; i += slice) {
      // (`pstyle` applies a dirty element's style; it is public API, missing from the bundled typings.)
      els.slice(i, i + slice).forEach((el) => {
        (el as unknown as { pstyle: (name: string) => unknown }).pstyle("display");
      });
      await yieldTask();
    }
  }

  /** Run `fn` (an image export) with labels and glyphs on, as at full zoom; the zoomed-out look comes back after. */
  withDetail<T>(fn: () => T): T {
    if (!this.lowZoom) return fn();
    this.cy.batch(() => this.cy.nodes().removeClass("lowzoom frame-low"));
    try {
      return fn();
    } finally {
      this.cy.batch(() => this.cy.nodes().forEach((n) => {
        n.addClass(LinkChart.isFrame(n) ? "frame-low" : "lowzoom");
      }));
    }
  }

  /** Add a subgraph's nodes and edges (skipping ones already present); returns the ids of new nodes.
   * A core load above BIG_CHART nodes keeps the top nodes per type (members and evidence first, then by the money
   * on their links) and puts one "N more" handle per type for the rest (`showMore`). */
  add(sub: Subgraph, opts: { core?: boolean; around?: NodeSingular } = {}): string[] {
    // Ids on the chart read once (a Cytoscape lookup builds a collection: 40,000 of them for a big lead).
    const onChart = new Set<string>(this.cy.elements().map((el) => el.id()));
    let nodes = sub.nodes.filter((n) => !onChart.has(n.id));
    if (opts.core && nodes.length > BIG_CHART) {
      // The server numbers the communities of a big answer (props.community): group by them, else by type.
      this.groupBy = nodes.every((n) => typeof n.props?.community === "number") ? "community" : "type";
      if (this.groupBy === "community") this.groupLabels = communityLabels(nodes);
      nodes = this.holdBack(nodes, sub.edges);
      this.grouped = true;
    }
    const els: ElementDefinition[] = [];
    const newNodes: string[] = [];
    // A big chart draws visits without labels and links without arrowheads (label measuring and arrow
    // drawing were most of its first frame); selecting a node still shows its figures in the panel. The class is
    // given at creation: adding it afterwards restyled every element a second time.
    const big = !!opts.core && this.held.size > 0;
    // A big chart opens zoomed out: created with the zoomed-out classes (set after, they restyled every node).
    if (big) this.lowZoom = true;
    if (this.grouped) {
      // Big charts: one frame per community (or per type) around its nodes (and its "more" handle).
      for (const key of new Set(nodes.map((n) => this.groupOf(n)))) {
        const gid = `Group:${key}`;
        if (!onChart.has(gid) && !els.some((e) => e.data.id === gid)) {
          // Nodes added later without a community (expansions, search) go to their type's group.
          const label = this.groupLabels.get(key) ?? t(`type.${key}`);
          els.push({ group: "nodes", data: { id: gid, type: "Group", key, label, w: 60, h: 60,
            forType: this.groupBy === "type" ? key : "", props: { group: key } }, selectable: false,
            classes: this.lowZoom ? ["frame", "frame-low"] : ["frame"] });
        }
      }
    }
    for (const n of nodes) {
      newNodes.push(n.id);
      const data = this.nodeData(n, !!opts.core);
      if (this.grouped) data.group = this.groupOf(n);
      const classes = this.nodeClasses(n);
      els.push({ group: "nodes", data, classes: big && n.type === "Visit" ? [...classes, "quiet"] : classes });
    }
    const present = new Set(newNodes);
    const has = (id: string) => present.has(id) || onChart.has(id);
    let drawn: GEdge[] = [];
    for (const e of sub.edges) {
      if (onChart.has(e.id)) continue;
      if (!has(e.source) || !has(e.target)) {
        if (this.held.size) this.heldEdges.push(e);
        continue;
      }
      drawn.push(e);
    }
    // A community's top nodes are densely linked (8 links a node on a 3,777-node lead, and draw time follows the
    // links): a big chart by community opens with the strongest links, about 2.5 a node (the members' first);
    // the others come with the group's "more" handle.
    const budget = Math.round(EDGE_BUDGET * nodes.length);
    if (big && this.groupBy === "community" && drawn.length > budget) {
      const w = (e: GEdge) => (this.members.has(e.source) || this.members.has(e.target) ? 1e15 : 0) +
        (Number(e.amount) || 0) + (Number(e.visits) || 0);
      const weight = new Map(drawn.map((e) => [e.id, w(e)]));
      drawn.sort((a, b) => weight.get(b.id)! - weight.get(a.id)!);
      this.heldEdges.push(...drawn.slice(budget));
      drawn = drawn.slice(0, budget);
    }
    for (const e of drawn) els.push({ group: "edges", data: this.edgeData(e), classes: big ? ["quiet"] : [] });
    this.truncated = this.truncated || sub.truncated;
    this.cy.batch(() => {
      const added = this.cy.add(els);
      if (opts.around) this.placeAround(added.nodes(), opts.around);
    });
    if (opts.core && this.held.size) this.addHandles();
    this.applyVisibility();
    return newNodes;
  }

  private held = new Map<string, GNode[]>();
  /** Big chart: nodes sit in one frame per community (`Group:c<n>`, the nodes' `data.group` is `c<n>`) or,
   * without communities in the answer, per type (`Group:<type>`). */
  grouped = false;
  groupBy: "community" | "type" = "type";
  private groupLabels = new Map<string, string>();

  /** The group (community or type) a node of a big chart is drawn in. */
  groupOf(n: GNode): string {
    return this.groupBy === "community" && typeof n.props?.community === "number" ? `c${n.props.community}` : n.type;
  }
  private heldEdges: GEdge[] = [];

  /** Keep the top nodes of a big answer; hold the rest back per type behind "N more" handles. */
  private holdBack(nodes: GNode[], edges: GEdge[]): GNode[] {
    const money = new Map<string, number>();
    for (const e of edges) {
      const w = (Number(e.amount) || 0) + (Number(e.visits) || 0);
      money.set(e.source, (money.get(e.source) ?? 0) + w);
      money.set(e.target, (money.get(e.target) ?? 0) + w);
    }
    const byGroup = new Map<string, GNode[]>();
    for (const n of nodes) {
      const key = this.groupOf(n);
      const list = byGroup.get(key);
      if (list) list.push(n);
      else byGroup.set(key, [n]);
    }
    const keep: GNode[] = [];
    const byCommunity = this.groupBy === "community";
    for (const [key, list] of byGroup) {
      // Weighed once per node (not per comparison); visits count half: on a big chart the people and places
      // matter more than single visit tiles.
      const w = new Map(list.map((n) => [n.id, nodeWeight(n, this.members, money) / (n.type === "Visit" ? 2 : 1)]));
      list.sort((a, b) => w.get(b.id)! - w.get(a.id)!);
      const share = (BIG_CHART * list.length) / nodes.length;
      // By community: about 250 nodes in all (the groups' frames and the links inside them cost draw time too).
      const quota = byCommunity ? Math.max(Math.min(list.length, 6), Math.round(share * 0.6))
        : Math.max(12, Math.round(key === "Visit" ? share / 2 : share));
      const must = list.filter((n) => nodeWeight(n, this.members, money) === Number.MAX_SAFE_INTEGER).length;
      const k = Math.min(list.length, Math.max(quota, Math.min(must, BIG_CHART)));
      keep.push(...list.slice(0, k));
      if (list.length > k) this.held.set(key, list.slice(k));
    }
    return keep;
  }

  private addHandles(): void {
    this.cy.batch(() => {
      for (const [key, rest] of this.held) {
        const id = `More:${key}`;
        const props: Record<string, unknown> = { forGroup: key, remaining: rest.length };
        if (this.groupBy === "type") props.forType = key;
        const n: GNode = { id, type: "More", key, label: "", props, risk: null };
        const el = this.cy.getElementById(id);
        if (!rest.length) {
          el.remove();
          continue;
        }
        if (el.nonempty()) el.data({ props: n.props, label: nodeLabel(n) });
        else {
          const data = this.nodeData(n, true);
          if (this.cy.getElementById(`Group:${key}`).nonempty()) data.group = key;
          this.cy.add({ group: "nodes", data, classes: this.lowZoom ? ["lowzoom"] : [] });
        }
      }
    });
  }

  /** How many nodes of a type are held back behind its "N more" handle. */
  heldCount(type?: string): number {
    if (type) return this.held.get(type)?.length ?? 0;
    return [...this.held.values()].reduce((a, l) => a + l.length, 0);
  }

  /** Bring `count` more held-back nodes of a group (community or type) onto the chart next to its handle
   * (incremental layout). */
  showMore(group: string, count = MORE_STEP): string[] {
    const rest = this.held.get(group) ?? [];
    const batch = rest.splice(0, count);
    if (!batch.length) return [];
    const handle = this.cy.getElementById(`More:${group}`);
    const ids = new Set(batch.map((n) => n.id));
    // By community: the group's links held back at opening come too.
    if (this.groupBy === "community") {
      this.members_(group).forEach((n) => {
        ids.add(n.id());
      });
    }
    const edges = this.heldEdges.filter((e) => (ids.has(e.source) || ids.has(e.target)));
    this.heldEdges = this.heldEdges.filter((e) => !(ids.has(e.source) || ids.has(e.target)));
    const added = this.add({ nodes: batch, edges, truncated: false },
      { around: handle.nonempty() ? (handle as NodeSingular) : undefined });
    // Edges to nodes still held stay held for later.
    const still = new Set([...this.held.values()].flat().map((n) => n.id));
    this.heldEdges.push(...edges.filter((e) => this.cy.getElementById(e.id).empty() &&
      (still.has(e.source) || still.has(e.target))));
    this.addHandles();
    // Evidence bands: the bands laid out again (linear; pinned nodes stay); other layouts keep every old node
    // where it is and only push the new ring apart.
    if (this.lastLayout === "layered") {
      this.layeredLayout();
      this.separate();
      this.updateFrames();
      this.fit();
    } else {
      this.separate();
      this.updateFrames();
    }
    this.events.onChange?.();
    return added;
  }

  /** A frame node (a big chart's group), not an entity. */
  static isFrame(n: NodeSingular): boolean {
    return n.data("type") === "Group";
  }

  /** The nodes drawn in group `key`'s frame. */
  private members_(key: string): cytoscape.NodeCollection {
    return this.cy.nodes().filter((n) => n.data("group") === key);
  }

  /** Size each group's frame to the box of its drawn nodes (labels under them included); frames of groups with
   * nothing drawn are hidden. Frames follow the evidence layout only: after another layout they are hidden. */
  updateFrames(): void {
    if (!this.grouped) return;
    const box = new Map<string, { x1: number; y1: number; x2: number; y2: number }>();
    this.cy.nodes().forEach((n) => {
      const key = n.data("group");
      if (!key || n.hasClass("gone")) return;
      const p = n.position();
      const r = look(n.data("type")).size / 2;
      const b = box.get(key);
      const x1 = p.x - r, x2 = p.x + r, y1 = p.y - r, y2 = p.y + r + 14;
      if (b) {
        b.x1 = Math.min(b.x1, x1); b.x2 = Math.max(b.x2, x2); b.y1 = Math.min(b.y1, y1); b.y2 = Math.max(b.y2, y2);
      } else box.set(key, { x1, y1, x2, y2 });
    });
    const pad = 16;
    this.cy.batch(() => this.cy.nodes('[type = "Group"]').forEach((f) => {
      const b = box.get(String(f.data("key")));
      const off = !b || this.framesOff;
      if (off !== f.hasClass("frame-off")) f.toggleClass("frame-off", off);
      if (!b) return;
      f.position({ x: (b.x1 + b.x2) / 2, y: (b.y1 + b.y2) / 2 });
      f.data({ w: b.x2 - b.x1 + 2 * pad, h: b.y2 - b.y1 + 2 * pad });
    }));
  }

  /** Frames hidden (after a layout other than the evidence bands, which does not keep groups apart). */
  private framesOff = false;

  /** New nodes on rings around `center`, outside what is already drawn nearby. */
  private placeAround(ns: cytoscape.NodeCollection, center: NodeSingular): void {
    const c = center.position();
    const perRing = 16;
    ns.forEach((n, i) => {
      const ring = Math.floor(i / perRing);
      const inRing = Math.min(perRing, ns.length - ring * perRing);
      const a = (2 * Math.PI * (i % perRing)) / Math.max(1, inRing) + ring * 0.3;
      const r = 110 + ring * 70;
      n.position({ x: c.x + r * Math.cos(a), y: c.y + r * Math.sin(a) });
    });
  }

  /**
   * Push overlapping nodes apart (a grid-bucketed pass, a few rounds) so that nothing hides under another node
   * — e.g. a ring's key doctor under its hospital. Locked (pinned) nodes do not move.
   */
  separate(eles: cytoscape.NodeCollection = this.cy.nodes().filter((n) => !n.hasClass("gone"))): number {
    const nodes = eles.filter((n) => !n.hasClass("gone") && !LinkChart.isFrame(n)) as cytoscape.NodeCollection;
    if (nodes.length < 2) return 0;
    const pos = nodes.map((n) => ({ ...n.position() }));
    const rad = nodes.map((n) => look(n.data("type")).size / 2 + 9);
    const locked = nodes.map((n) => n.locked());
    const cell = 2 * Math.max(...rad);
    let moved = 0;
    for (let round = 0; round < 8; round++) {
      const grid = new Map<string, number[]>();
      pos.forEach((p, i) => {
        const k = `${Math.floor(p.x / cell)},${Math.floor(p.y / cell)}`;
        const list = grid.get(k);
        if (list) list.push(i);
        else grid.set(k, [i]);
      });
      let overlaps = 0;
      pos.forEach((p, i) => {
        const gx = Math.floor(p.x / cell);
        const gy = Math.floor(p.y / cell);
        for (let dx = -1; dx <= 1; dx++) {
          for (let dy = -1; dy <= 1; dy++) {
            for (const j of grid.get(`${gx + dx},${gy + dy}`) ?? []) {
              if (j <= i) continue;
              const q = pos[j];
              let vx = q.x - p.x;
              let vy = q.y - p.y;
              let d = Math.hypot(vx, vy);
              const min = rad[i] + rad[j];
              if (d >= min) continue;
              overlaps++;
              if (d < 0.01) {
                const a = ((i * 7 + j * 13) % 360) * (Math.PI / 180);
                vx = Math.cos(a);
                vy = Math.sin(a);
                d = 1;
              }
              const push = (min - d) / 2 + 0.5;
              const ux = vx / d;
              const uy = vy / d;
              if (locked[i] && locked[j]) continue;
              if (locked[i]) {
                q.x += ux * push * 2;
                q.y += uy * push * 2;
              } else if (locked[j]) {
                p.x -= ux * push * 2;
                p.y -= uy * push * 2;
              } else {
                p.x -= ux * push;
                p.y -= uy * push;
                q.x += ux * push;
                q.y += uy * push;
              }
            }
          }
        }
      });
      moved += overlaps;
      if (!overlaps) break;
    }
    if (moved) this.cy.batch(() => nodes.forEach((n, i) => { if (!locked[i]) n.position(pos[i]); }));
    return moved;
  }

  /** Nodes drawn on top of each other (centre distance below half their sizes), for tests and the benchmark. */
  overlaps(): number {
    const ns = this.cy.nodes().filter((n) => !n.hasClass("gone") && !LinkChart.isFrame(n));
    const grid = new Map<string, Array<{ x: number; y: number; r: number }>>();
    let count = 0;
    ns.forEach((n) => {
      const p = n.position();
      const r = look(n.data("type")).size / 2;
      const gx = Math.floor(p.x / 60);
      const gy = Math.floor(p.y / 60);
      for (let dx = -1; dx <= 1; dx++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (const q of grid.get(`${gx + dx},${gy + dy}`) ?? []) {
            if (Math.hypot(q.x - p.x, q.y - p.y) < (q.r + r) * 0.8) count++;
          }
        }
      }
      const k = `${gx},${gy}`;
      grid.set(k, [...(grid.get(k) ?? []), { x: p.x, y: p.y, r }]);
    });
    return count;
  }

  private nodeData(n: GNode, core: boolean): Record<string, unknown> {
    const props = n.props ?? {};
    const begin = n.type === "Visit" ? ms((props.begntime as string) ?? null) : null;
    const end = n.type === "Visit" ? ms((props.endtime as string) ?? (props.begntime as string) ?? null) : null;
    const first = begin ?? ms((props.first as string) ?? null);
    const last = end ?? ms((props.last as string) ?? null) ?? first;
    return {
      id: n.id, type: n.type, key: n.key, label: nodeLabel(n), props, risk: n.risk,
      risky: (n.risk ?? 0) >= 0.6, core, evidence: props.evidence === true, t0: first, t1: last,
    };
  }

  private nodeClasses(n: GNode): string[] {
    const c: string[] = this.lowZoom ? ["lowzoom"] : [];
    if (this.members.has(n.id)) c.push("member");
    if (n.props?.evidence === true) c.push("evidence");
    return c;
  }

  private edgeData(e: GEdge): Record<string, unknown> {
    return {
      id: e.id, type: e.type, source: e.source, target: e.target, visits: e.visits, amount: e.amount,
      first: e.first, last: e.last, props: e.props ?? {}, w: edgeWidth(e), t0: ms(e.first), t1: ms(e.last ?? e.first),
      elabel: edgeLabel(e) || undefined, lbl: shownEdgeLabel(e) || undefined, rel: relName(e.type),
    };
  }

  snapshot(): ChartSnapshot {
    return {
      elements: this.cy.elements().jsons() as unknown as ElementDefinition[], zoom: this.cy.zoom(),
      pan: { ...this.cy.pan() }, expansions: [...this.expansions], typeOn: [...this.typeOn], truncated: this.truncated,
    };
  }

  restore(snap: ChartSnapshot): void {
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(snap.elements);
      this.cy.elements().removeClass("faded match");
      this.cy.nodes(".pinned").lock();
    });
    this.expansions = new Map(snap.expansions);
    this.typeOn = new Map(snap.typeOn);
    this.grouped = snap.elements.some((e) => e.data.type === "Group");
    this.truncated = snap.truncated;
    this.cy.viewport({ zoom: snap.zoom, pan: snap.pan });
    this.applyVisibility();
  }

  // ---- layouts ----------------------------------------------------------------------------------------------

  private lastLayout: LayoutName | null = null;

  layout(name: LayoutName, eles = this.cy.elements(".gone").absoluteComplement()): Promise<void> {
    this.lastLayout = name;
    eles = eles.filter((el) => !(el.isNode() && LinkChart.isFrame(el as NodeSingular)));
    // Frames follow the evidence bands (community blocks kept apart); other layouts mix the groups.
    this.framesOff = name !== "layered";
    const n = eles.nodes().length;
    const animate = n <= 250;
    let opts: cytoscape.LayoutOptions;
    if (name === "fcose") {
      opts = { name: "fcose", quality: n > 300 ? "draft" : "default", randomize: true, animate,
        animationDuration: 400, nodeRepulsion: () => 9000, idealEdgeLength: () => 90, nodeSeparation: 70,
        nodeDimensionsIncludeLabels: n <= 300, numIter: n > 300 ? 1200 : 2500,
        packComponents: true, fit: true, padding: 30 } as unknown as cytoscape.LayoutOptions;
    } else if (name === "layered") {
      // Three steps, each its own task (a big chart's layout, overlap pass and fit in one task froze the page).
      this.layeredLayout(eles.nodes());
      return yieldTask().then(() => {
        this.separate(eles.nodes());
        this.updateFrames();
        return yieldTask();
      }).then(() => this.fit());
    } else if (name === "dagre") {
      return this.chainLayout(eles, animate).then(() => this.updateFrames());
    } else if (name === "breadthfirst") {
      opts = { name: "breadthfirst", directed: true, spacingFactor: 1.1, animate, fit: true, padding: 30,
        roots: eles.nodes(".member").filter((x) => x.data("type") === "Person") } as cytoscape.LayoutOptions;
    } else {
      opts = { name: "concentric", animate, fit: true, padding: 30, minNodeSpacing: 12,
        concentric: (node: NodeSingular) => (node.hasClass("member") ? 3 : node.data("type") === "Visit" ? 1 : 2),
        levelWidth: () => 1 } as cytoscape.LayoutOptions;
    }
    return new Promise<void>((resolve) => {
      const l = eles.layout(opts);
      l.one("layoutstop", () => resolve());
      l.run();
    }).then(() => {
      // Layouts place by centre only: push apart whatever still overlaps (labels included), then fit.
      if (this.separate(eles.nodes())) this.fit();
      this.updateFrames();
    });
  }

  /**
   * Hierarchical chain layout (dagre, top to bottom): phones/addresses → persons → practitioners → institutions and
   * pharmacies → drugs, ranked through helper edges derived from the visits; each person's visits are then laid
   * out as a small time-ordered block under the person, so dozens of visits do not make one endless row.
   */
  private async chainLayout(eles: cytoscape.CollectionReturnValue, animate: boolean): Promise<void> {
    const cy = this.cy;
    const nodes = eles.nodes();
    const visits = nodes.filter((n) => n.data("type") === "Visit");
    const others = nodes.difference(visits);
    const helper: ElementDefinition[] = [];
    const seen = new Set<string>();
    const link = (a?: string, b?: string) => {
      if (!a || !b || a === b || cy.getElementById(a).empty() || cy.getElementById(b).empty()) return;
      const id = `__chain:${a}>${b}`;
      if (seen.has(id)) return;
      seen.add(id);
      helper.push({ group: "edges", data: { id, source: a, target: b, type: "__helper", w: 0 }, classes: "helper" });
    };
    const anchors = new Map<string, [string | undefined, string | undefined]>();
    visits.forEach((v) => {
      let person: string | undefined;
      let prac: string | undefined;
      let place: string | undefined;
      const drugs: string[] = [];
      v.neighborhood("node").forEach((n) => {
        const type = n.data("type");
        if (type === "Person") person = n.id();
        else if (type === "Practitioner") prac = n.id();
        else if (type === "Institution" || type === "Pharmacy") place = n.id();
        else if (type === "Drug") drugs.push(n.id());
      });
      link(person, prac ?? place);
      link(prac, place);
      for (const d of drugs) link(place ?? prac ?? person, d);
      anchors.set(v.id(), [person, place ?? prac]);
    });
    others.forEach((n) => {
      const type = n.data("type");
      if (type === "Phone" || type === "Address") {
        n.neighborhood('node[type = "Person"]').forEach((p) => link(n.id(), p.id()));
      }
    });
    // Each person's visits go in a time-ordered block right of the person (a small timeline per person).
    const COLS = 4;
    const STEP = 22;
    const byPerson = new Map<string, string[]>();
    for (const [vid, [person, place]] of anchors) {
      const key = person ?? place ?? "";
      byPerson.set(key, [...(byPerson.get(key) ?? []), vid]);
    }
    const maxRows = Math.max(1, ...[...byPerson.values()].map((ids) => Math.ceil(ids.length / COLS)));
    const added = cy.add(helper);
    const ranked = others.union(others.edgesWith(others)).union(added);
    // Dagre spaces nodes by their drawn width: widen persons to their visit block for the layout only.
    const widened = cy.collection();
    for (const [key, ids] of byPerson) {
      const p = key ? cy.getElementById(key) : null;
      if (p && p.nonempty() && p.data("type") === "Person") {
        p.style("width", Math.min(COLS, ids.length) * STEP + 8);
        widened.merge(p);
      }
    }
    await new Promise<void>((resolve) => {
      const l = ranked.layout({ name: "dagre", rankDir: "TB", nodeSep: 36, rankSep: maxRows * STEP + 170,
        edgeSep: 8, fit: false, animate: false } as unknown as cytoscape.LayoutOptions);
      l.one("layoutstop", () => resolve());
      l.run();
    });
    widened.removeStyle("width");
    added.remove();
    const target = new Map<string, { x: number; y: number }>();
    for (const [key, ids] of byPerson) {
      const c = key ? cy.getElementById(key).position() : { x: 0, y: 0 };
      ids.sort((x, y) => (cy.getElementById(x).data("t0") ?? 0) - (cy.getElementById(y).data("t0") ?? 0));
        ids.forEach((vid, k) => {
        const col = k % COLS;
        const row = Math.floor(k / COLS);
        target.set(vid, { x: c.x + (col - (Math.min(COLS, ids.length) - 1) / 2) * STEP, y: c.y + 48 + row * STEP });
      });
    }
    cy.batch(() => visits.forEach((v) => {
      if (!v.locked()) v.position(target.get(v.id()) ?? v.position());
    }));
    this.separate(nodes);
    if (animate) await cy.animation({ fit: { eles, padding: 30 }, duration: 300 }).play().promise();
    else cy.fit(eles, 30);
  }

  /** Fit the drawn nodes into the view. By node boxes only: measuring every label and edge of a big chart (what
   * `cy.fit` does) took half a second for 400 nodes. */
  fit(): void {
    const ns = this.cy.nodes().filter((n) => !n.hasClass("gone") && !LinkChart.isFrame(n));
    if (!ns.length) return;
    // From positions and the types' sizes: a bounding box needs the nodes' style, which forced styling a big chart
    // before its first frame (and again after the zoom changed its classes).
    const bb = { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity, w: 0, h: 0 };
    ns.forEach((n) => {
      const p = n.position();
      const r = look(n.data("type")).size / 2;
      bb.x1 = Math.min(bb.x1, p.x - r); bb.x2 = Math.max(bb.x2, p.x + r);
      bb.y1 = Math.min(bb.y1, p.y - r); bb.y2 = Math.max(bb.y2, p.y + r);
    });
    bb.w = bb.x2 - bb.x1;
    bb.h = bb.y2 - bb.y1;
    const pad = 40;
    const w = this.cy.width();
    const hh = this.cy.height();
    const zoom = Math.max(this.cy.minZoom(), Math.min(this.cy.maxZoom(), 1.6,
      Math.min((w - 2 * pad) / Math.max(1, bb.w), (hh - 2 * pad - 16) / Math.max(1, bb.h))));
    this.cy.viewport({ zoom, pan: { x: (w - zoom * (bb.x1 + bb.x2)) / 2, y: (hh - zoom * (bb.y1 + bb.y2)) / 2 } });
  }

  /**
   * Evidence layout: one band per kind of node (contacts, persons, occasions/bursts, operators and doctors,
   * institutions, drugs), long bands wrapped into rows of PER_ROW, each band ordered by the mean position of its
   * neighbours in the bands above (two sweeps) so links run short; time nodes in time order. O(nodes + edges).
   */
  layeredLayout(nodes: cytoscape.NodeCollection = this.cy.nodes().filter((n) => !n.hasClass("gone"))): void {
    nodes = nodes.filter((n) => !LinkChart.isFrame(n));
    if (this.grouped && this.groupBy === "community") {
      this.communityLayout(nodes);
      return;
    }
    const target = this.bandTargets(nodes);
    this.cy.batch(() => nodes.forEach((n) => {
      if (!n.locked()) n.position(target.get(n.id()) ?? n.position());
    }));
    this.fit();
  }

  /** Big chart grouped by community: each community's evidence bands as one block, the blocks packed in rows
   * (largest first) with a gap between them, so the frames never overlap. Linear in nodes + edges. */
  private communityLayout(nodes: cytoscape.NodeCollection): void {
    const groups = new Map<string, NodeSingular[]>();
    nodes.forEach((n) => {
      const key = String(n.data("group") ?? "");
      const list = groups.get(key);
      if (list) list.push(n);
      else groups.set(key, [n]);
    });
    const blocks = [...groups.values()].map((list) => {
      const coll = this.cy.collection(list as unknown as cytoscape.CollectionArgument);
      const t = this.bandTargets(coll as cytoscape.NodeCollection);
      let x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
      for (const p of t.values()) {
        x1 = Math.min(x1, p.x); x2 = Math.max(x2, p.x); y1 = Math.min(y1, p.y); y2 = Math.max(y2, p.y);
      }
      return { t, x1, y1, w: x2 - x1 + COL_GAP * 1.6, h: y2 - y1 + ROW_GAP * 0.9, n: list.length };
    }).sort((a, b) => b.n - a.n);
    const area = blocks.reduce((a, b) => a + b.w * b.h, 0);
    const rowWidth = Math.max(blocks[0]?.w ?? 0, Math.sqrt(area) * 1.5);
    const gap = 90;
    const target = new Map<string, { x: number; y: number }>();
    let x = 0, y = 0, rowH = 0;
    for (const b of blocks) {
      if (x > 0 && x + b.w > rowWidth) {
        x = 0;
        y += rowH + gap;
        rowH = 0;
      }
      for (const [id, p] of b.t) target.set(id, { x: x + (p.x - b.x1), y: y + (p.y - b.y1) });
      x += b.w + gap;
      rowH = Math.max(rowH, b.h);
    }
    this.cy.batch(() => nodes.forEach((n) => {
      if (!n.locked()) n.position(target.get(n.id()) ?? n.position());
    }));
    this.fit();
  }

  /** Target positions of the evidence bands for `nodes` (no compound nodes), the first band at y = 0. */
  private bandTargets(nodes: cytoscape.NodeCollection): Map<string, { x: number; y: number }> {
    const bands = new Map<number, NodeSingular[]>();
    nodes.forEach((n) => {
      const type = String(n.data("type"));
      // A resale chain's drug (with its quantities) sits with the shared contacts above the persons: its links
      // from the collectors ran down through the doctors and pharmacies.
      const r = type === "Drug" && n.data("props")?.quantity !== undefined ? 0
        : ROW_OF[type === "More" ? String(n.data("props")?.forType) : type] ?? 6;
      const band = bands.get(r);
      if (band) band.push(n);
      else bands.set(r, [n]);
    });
    // One doctor (or operator) and one or two places: side by side in the places' row. Stacked, every link from
    // the occasions or bursts to the place ran through the doctor.
    if (bands.get(3)?.length === 1 && (bands.get(4)?.length ?? 0) >= 1 && bands.get(4)!.length <= 2) {
      bands.get(4)!.push(...bands.get(3)!);
      bands.delete(3);
    }
    const order = [...bands.keys()].sort((a, b) => a - b);
    const x = new Map<string, number>();
    const place = (list: NodeSingular[], key: (n: NodeSingular) => number) => {
      const keys = new Map(list.map((n) => [n.id(), key(n)]));  // once per node, not per comparison
      list.sort((a, b) => keys.get(a.id())! - keys.get(b.id())!);
      list.forEach((n, i) => x.set(n.id(), (i % PER_ROW) - (Math.min(PER_ROW, list.length) - 1) / 2));
    };
    const nbrs = new Map<string, string[]>();
    nodes.forEach((n) => {
      nbrs.set(n.id(), n.connectedEdges().map((e) => (e.source().id() === n.id() ? e.target().id() : e.source().id())));
    });
    const bary = (n: NodeSingular) => {
      let sum = 0;
      let c = 0;
      (nbrs.get(n.id()) ?? []).forEach((m) => {
        const v = x.get(m);
        if (v !== undefined) {
          sum += v;
          c++;
        }
      });
      return c ? sum / c : 0;
    };
    for (let sweep = 0; sweep < 2; sweep++) {
      for (const r of order) {
        const list = bands.get(r)!;
        const timed = list.every((n) => typeof n.data("t0") === "number") && (r === 2);
        place(list, timed ? (n) => n.data("t0") : (n) => (sweep === 0 && r === order[0] ? 0 : bary(n)) +
          (this.members.has(n.id()) ? -0.001 : 0));
      }
    }
    let y = 0;
    const target = new Map<string, { x: number; y: number }>();
    for (const r of order) {
      const list = bands.get(r)!;
      const gap = BAND_GAP[r] ?? COL_GAP;
      // Rows about as wide as the persons' rows; a band of hundreds (visits of a big chart) as a wide block.
      let per = Math.max(4, Math.floor((PER_ROW * COL_GAP) / gap), Math.ceil(Math.sqrt(list.length * 4)));
      // Up to 7 in one row (a second row of one or two sat among the links of the first); wrapped rows balanced.
      if (list.length <= 7) per = Math.max(per, list.length);
      else per = Math.ceil(list.length / Math.ceil(list.length / per));
      const rows = Math.ceil(list.length / per);
      // Wrapped rows of big icons with two-line labels (institutions, drugs) a little further apart: a hospital's
      // icon sat on the label of the pharmacy above it.
      const wrap = r >= 4 && r <= 5 ? 0.85 : 0.62;
      list.forEach((n, i) => {
        const row = Math.floor(i / per);
        const inRow = Math.min(per, list.length - row * per);
        const col = (i % per) - (inRow - 1) / 2;
        // Stagger wrapped rows by half a column so the lines between them do not run through nodes.
        target.set(n.id(), { x: (col + (row % 2) * 0.5) * gap, y: y + row * (ROW_GAP * wrap) });
      });
      y += (rows - 1) * ROW_GAP * wrap + ROW_GAP;
    }
    return target;
  }

  // ---- expand / collapse / hide / pin -----------------------------------------------------------------------

  async expand(nodeId: string, opts: { includeVisits?: boolean; maxNodes?: number } = {}): Promise<string[]> {
    const node = this.cy.getElementById(nodeId);
    // Visits are not ego centres in the API; their few neighbours come with the visit already.
    if (node.empty() || node.data("type") === "Visit" || node.data("type") === "Lead") return [];
    if (node.data("type") === "More") return this.showMore(String(node.data("props")?.forGroup ?? ""));
    if (!ENTITY_TYPES.includes(node.data("type"))) return [];
    const types = opts.includeVisits ? undefined : ENTITY_TYPES.join(",");
    this.pending++;
    try {
      const sub = await api.ego(nodeId, { depth: 1, types, max_nodes: opts.maxNodes ?? 150 });
      // Connect what comes in to everything already on the chart, not only to the expanded node.
      const onChart = this.cy.nodes().filter((n) => ENTITY_TYPES.includes(n.data("type"))).map((n) => n.id());
      const incoming = sub.nodes.filter((n) => ENTITY_TYPES.includes(n.type)).map((n) => n.id);
      const ids = [...new Set([...onChart, ...incoming])];
      if (ids.length <= 5000 && incoming.some((id) => !onChart.includes(id))) {
        try {
          const among = await api.subgraph(ids, false);
          const known = new Set(sub.edges.map((e) => e.id));
          sub.edges.push(...among.edges.filter((e) => !known.has(e.id)));
        } catch {
          /* the ego answer alone */
        }
      }
      const added = this.add(sub, { around: node as NodeSingular });
      this.separate();
      this.updateFrames();
      const prev = this.expansions.get(nodeId) ?? [];
      this.expansions.set(nodeId, [...prev, ...added]);
      node.addClass("expanded");
      if (added.length) this.cy.animate({ fit: { eles: this.visible().nodes, padding: 30 }, duration: 300 });
      this.events.onChange?.();
      return added;
    } finally {
      this.pending--;
    }
  }

  /** Remove what expanding this node added (except core lead elements, pinned nodes and their own expansions). */
  collapse(nodeId: string): number {
    const added = this.expansions.get(nodeId) ?? [];
    let removed = 0;
    this.cy.batch(() => {
      for (const id of added) {
        if (this.expansions.has(id)) removed += this.collapse(id);
        const n = this.cy.getElementById(id);
        if (n.empty() || n.data("core") || n.hasClass("pinned")) continue;
        n.remove();
        removed++;
      }
    });
    this.expansions.delete(nodeId);
    this.cy.getElementById(nodeId).removeClass("expanded");
    this.events.onChange?.();
    return removed;
  }

  isExpanded(nodeId: string): boolean {
    return this.expansions.has(nodeId);
  }

  hide(ids: string[]): void {
    this.cy.batch(() => ids.forEach((id) => this.cy.getElementById(id).data("manualHidden", true)));
    this.applyVisibility();
  }

  unhideAll(): void {
    this.cy.batch(() => this.cy.nodes().forEach((n) => { n.data("manualHidden", false); }));
    this.applyVisibility();
  }

  togglePin(nodeId: string): boolean {
    const n = this.cy.getElementById(nodeId);
    if (n.hasClass("pinned")) {
      n.removeClass("pinned");
      n.unlock();
      return false;
    }
    n.addClass("pinned");
    n.lock();
    return true;
  }

  // ---- filters ----------------------------------------------------------------------------------------------

  setTypeVisible(type: string, on: boolean): void {
    this.typeOn.set(type, on);
    this.applyVisibility();
  }

  typeVisible(type: string): boolean {
    return this.typeOn.get(type) ?? true;
  }

  /** Time domain [min, max] (ms) of the visits and dated edges in the chart, or null if none are dated. */
  timeDomain(): [number, number] | null {
    let lo = Infinity;
    let hi = -Infinity;
    this.cy.elements().forEach((el) => {
      const a = el.data("t0");
      const b = el.data("t1");
      if (typeof a === "number") lo = Math.min(lo, a);
      if (typeof b === "number") hi = Math.max(hi, b);
    });
    return lo <= hi ? [lo, hi] : null;
  }

  setTimeWindow(win: [number, number] | null): void {
    this.windowMs = win;
    this.applyVisibility();
  }

  setFocusEvidence(on: boolean): void {
    this.focusEvidence = on;
    this.cy.batch(() => {
      if (!on) {
        this.cy.elements().removeClass("faded");
        return;
      }
      const ev = this.cy.nodes(".evidence");
      const keep = ev.union(ev.neighborhood()).union(this.cy.nodes(".member"));
      const keepEdges = ev.connectedEdges().union(this.cy.nodes(".member").edgesWith(this.cy.nodes(".member")));
      this.cy.elements().addClass("faded");
      keep.removeClass("faded");
      keepEdges.removeClass("faded");
    });
  }

  evidenceFocused(): boolean {
    return this.focusEvidence;
  }

  private inWindow(el: { data: (k: string) => unknown }): boolean {
    if (!this.windowMs) return true;
    const a = el.data("t0");
    const b = el.data("t1");
    if (typeof a !== "number") return true;
    const end = typeof b === "number" ? b : a;
    return a <= this.windowMs[1] && end >= this.windowMs[0];
  }

  /** One pass over all elements: manual hides, type filter and time window decide `.gone`. */
  applyVisibility(): void {
    this.cy.batch(() => {
      this.cy.nodes().forEach((n: NodeSingular) => {
        const type = (n.data("type") === "Group" ? n.data("forType") : n.data("type")) as string;
        const gone = !!n.data("manualHidden") || !(this.typeOn.get(type) ?? true) || !this.inWindow(n);
        if (gone !== n.hasClass("gone")) n.toggleClass("gone", gone);
      });
      this.cy.edges().forEach((e: EdgeSingular) => {
        const gone = !VISIT_EDGES.has(e.data("type")) && !this.inWindow(e);
        if (gone !== e.hasClass("gone")) e.toggleClass("gone", gone);
      });
    });
    this.updateFrames();
    this.refreshEdgeLabels();
    this.events.onChange?.();
  }

  /** Summary labels on visit links: all of them when the drawn ones are few (EDGE_LABELS), else those of the
   * selected nodes' links. */
  refreshEdgeLabels(): void {
    const labelled = this.cy.edges("[lbl]");
    if (!labelled.length) return;
    const shown = labelled.filter((e) => !e.hasClass("gone"));
    const all = shown.length <= EDGE_LABELS;
    const selected = new Set(this.cy.nodes(":selected").map((n) => n.id()));
    // Time nodes wrapped into two rows: labels on their links would sit on the second row's labels.
    const wrapped = this.cy.nodes('[type = "Occasion"], [type = "Burst"]').length > 7;
    const timed = (e: EdgeSingular) => /^(Occasion|Burst):/.test(e.source().id() + " " + e.target().id()) ||
      / (Occasion|Burst):/.test(" " + e.target().id());
    this.cy.batch(() => labelled.forEach((e) => {
      const on = (all && !(wrapped && timed(e))) || selected.has(e.source().id()) || selected.has(e.target().id());
      if (on !== e.hasClass("elabel-on")) e.toggleClass("elabel-on", on);
    }));
  }

  /** Nodes and edges currently drawn (not hidden by any filter, with both ends drawn). */
  visible(): { nodes: cytoscape.NodeCollection; edges: cytoscape.EdgeCollection } {
    const nodes = this.cy.nodes().filter((n) => !n.hasClass("gone") && !LinkChart.isFrame(n));
    const edges = this.cy.edges().filter((e) => !e.hasClass("gone") && !e.source().hasClass("gone") &&
      !e.target().hasClass("gone"));
    return { nodes, edges };
  }

  // ---- search -----------------------------------------------------------------------------------------------

  /** Mark and centre the chart's nodes whose key or label contains `q`; returns how many matched. */
  find(q: string): NodeSingular[] {
    const needle = q.trim().toLowerCase();
    const hits: NodeSingular[] = [];
    this.cy.batch(() => {
      this.cy.nodes(".match").removeClass("match");
      if (!needle) return;
      this.cy.nodes().forEach((n) => {
        const key = String(n.data("key") ?? "").toLowerCase();
        const label = String(n.data("label") ?? "").toLowerCase();
        if (key.includes(needle) || label.includes(needle) || n.id().toLowerCase() === needle) {
          n.addClass("match");
          hits.push(n);
        }
      });
    });
    if (hits.length) {
      const col = this.cy.collection().union(hits.map((n) => n.id()).map((id) => this.cy.getElementById(id)));
      this.cy.animate({ fit: { eles: col, padding: 120 }, duration: 300 });
      if (hits.length === 1) {
        this.cy.nodes(":selected").unselect();
        hits[0].select();
        this.events.onSelect?.(hits[0]);
      }
    }
    return hits;
  }

  /** Add one entity (from search) with its edges to what is already in the chart. */
  async addEntity(node: GNode): Promise<boolean> {
    if (this.cy.getElementById(node.id).nonempty()) {
      this.find(node.key);
      return false;
    }
    const ids = this.cy.nodes().filter((n) => ENTITY_TYPES.includes(n.data("type"))).map((n) => n.id());
    let sub: Subgraph = { nodes: [node], edges: [], truncated: false };
    try {
      const linked = await api.subgraph([...ids, node.id], false);
      sub = { nodes: [node], edges: linked.edges, truncated: false };
    } catch {
      /* the entity alone */
    }
    this.add(sub);
    const n = this.cy.getElementById(node.id);
    const nb = n.neighborhood("node");
    const ext = this.cy.extent();
    const p = nb.nonempty()
      ? { x: nb.boundingBox({}).x1 + nb.boundingBox({}).w / 2 + 40, y: nb.boundingBox({}).y1 - 40 }
      : { x: (ext.x1 + ext.x2) / 2, y: (ext.y1 + ext.y2) / 2 };
    n.position(p);
    this.find(node.key);
    return true;
  }

  /** Add the shortest paths between two entities (API `/graph/paths`) and highlight them; returns how many. */
  async addPaths(source: string, target: string): Promise<number> {
    const res = await api.paths(source, target, 4);
    const edges = res.paths.flatMap((p) => p.edges);
    this.add({ nodes: res.nodes, edges, truncated: false }, { around: this.cy.getElementById(source) as NodeSingular });
    this.cy.batch(() => {
      this.cy.elements(".path").removeClass("path");
      for (const p of res.paths) {
        for (const id of p.nodes) this.cy.getElementById(id).addClass("path");
        for (const e of p.edges) this.cy.getElementById(e.id).addClass("path");
      }
    });
    const onPath = this.cy.elements(".path");
    if (onPath.nonempty()) this.cy.animate({ fit: { eles: onPath, padding: 60 }, duration: 300 });
    this.events.onChange?.();
    return res.paths.length;
  }

  busy(): boolean {
    return this.pending > 0;
  }

  // ---- case files -------------------------------------------------------------------------------------------

  /** The chart as a case file stores it. */
  state(notes: string, layout: string | null): ChartState {
    const nodes: ChartState["nodes"] = [];
    this.cy.nodes().forEach((n) => {
      if (n.data("type") === "More" || n.data("type") === "Group") return;
      const p = n.position();
      nodes.push({ id: n.id(), x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10,
        pinned: n.hasClass("pinned"), hidden: !!n.data("manualHidden"), note: n.data("note") || null });
    });
    const edgeNotes: ChartState["edge_notes"] = [];
    this.cy.edges().forEach((e) => {
      if (e.data("note")) edgeNotes.push({ id: e.id(), note: String(e.data("note")) });
    });
    const win = this.windowMs ? this.windowMs.map((v) => new Date(v).toISOString().slice(0, 19)) : null;
    return { nodes, edge_notes: edgeNotes, notes, layout, zoom: this.cy.zoom(), pan: { ...this.cy.pan() },
      time_window: win, lang: lang() };
  }

  /** Put a saved state on a chart that holds the lead's own elements: adds the entities it lacks (with their
   * links to everything on the chart), then positions, pins, hides and notes as saved. */
  async applyState(st: ChartState): Promise<void> {
    const want = new Set(st.nodes.map((n) => n.id));
    for (const type of [...this.held.keys()]) {
      if ((this.held.get(type) ?? []).some((n) => want.has(n.id))) this.showMore(type, 100_000);
    }
    const missing = st.nodes.map((n) => n.id).filter((id) => this.cy.getElementById(id).empty() &&
      ENTITY_TYPES.includes(id.split(":", 1)[0]));
    if (missing.length) {
      const onChart = this.cy.nodes().filter((n) => ENTITY_TYPES.includes(n.data("type"))).map((n) => n.id());
      try {
        this.add(await api.subgraph([...onChart, ...missing].slice(0, 5000), false));
      } catch {
        /* entities gone from the data since the file was saved */
      }
    }
    this.cy.batch(() => {
      for (const n of st.nodes) {
        const el = this.cy.getElementById(n.id);
        if (el.empty()) continue;
        el.unlock();
        el.position({ x: n.x, y: n.y });
        el.data("manualHidden", !!n.hidden);
        el.data("note", n.note || null);
        if (n.pinned) {
          el.addClass("pinned");
          el.lock();
        }
      }
      for (const e of st.edge_notes) this.cy.getElementById(e.id).data("note", e.note);
    });
    if (st.time_window && st.time_window.length === 2) {
      this.windowMs = [ms(st.time_window[0]) ?? 0, ms(st.time_window[1]) ?? 0];
    }
    this.applyVisibility();
    if (st.zoom && st.pan) this.cy.viewport({ zoom: st.zoom, pan: st.pan });
    else this.fit();
  }

  timeWindow(): [number, number] | null {
    return this.windowMs;
  }

  // ---- keyboard ---------------------------------------------------------------------------------------------

  private focusId: string | null = null;

  /** The chart as a focusable region: arrows move between nodes, Enter opens the panel, +/− zoom, 0 fits. */
  private setupKeyboard(box: HTMLElement, announce?: (m: string) => void): void {
    box.tabIndex = 0;
    box.setAttribute("role", "application");
    box.setAttribute("aria-roledescription", t("chart.roledesc"));
    box.setAttribute("aria-label", t("chart.aria"));
    const say = (n: NodeSingular) => {
      const type = t(`type.${n.data("type")}`);
      const deg = n.connectedEdges().filter((e) => !e.hasClass("gone")).length;
      announce?.(t("chart.focus", { type, label: String(n.data("label") ?? ""), n: deg }));
    };
    box.addEventListener("keydown", (ev) => {
      const k = ev.key;
      const vis = this.cy.nodes().filter((n) => !n.hasClass("gone") && !LinkChart.isFrame(n));
      if (!vis.length) return;
      let cur = this.focusId ? this.cy.getElementById(this.focusId) : null;
      if (!cur || cur.empty() || cur.hasClass("gone")) cur = null;
      if (k.startsWith("Arrow")) {
        ev.preventDefault();
        let next: NodeSingular | null = null;
        if (!cur) {
          next = (vis.filter(".member").first() as NodeSingular).nonempty()
            ? (vis.filter(".member").first() as NodeSingular) : (vis.first() as NodeSingular);
        } else {
          const p = cur.position();
          const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[k] ?? [1, 0];
          let best = Infinity;
          vis.forEach((n) => {
            if (n.id() === cur!.id()) return;
            const q = n.position();
            const dx = q.x - p.x;
            const dy = q.y - p.y;
            const along = dx * dir[0] + dy * dir[1];
            if (along <= 0) return;
            const across = Math.abs(dx * dir[1] - dy * dir[0]);
            const score = along + 2 * across;
            if (score < best) {
              best = score;
              next = n;
            }
          });
        }
        if (next) this.focusNode(next, say);
      } else if (k === "Enter" || k === " ") {
        if (cur) {
          ev.preventDefault();
          this.cy.nodes(":selected").unselect();
          cur.select();
          this.events.onSelect?.(cur as NodeSingular);
        }
      } else if (k === "+" || k === "=" || k === "-" || k === "_") {
        ev.preventDefault();
        const f = k === "+" || k === "=" ? 1.25 : 0.8;
        this.cy.zoom({ level: this.cy.zoom() * f, renderedPosition: { x: box.clientWidth / 2, y: box.clientHeight / 2 } });
        announce?.(t("chart.zoomed", { z: Math.round(this.cy.zoom() * 100) }));
      } else if (k === "0") {
        this.fit();
      } else if (k === "Escape") {
        this.cy.nodes(".kbd-focus").removeClass("kbd-focus");
        this.focusId = null;
      }
    });
  }

  private focusNode(n: NodeSingular, say: (n: NodeSingular) => void): void {
    this.cy.nodes(".kbd-focus").removeClass("kbd-focus");
    n.addClass("kbd-focus");
    this.focusId = n.id();
    const ext = this.cy.extent();
    const p = n.position();
    if (p.x < ext.x1 || p.x > ext.x2 || p.y < ext.y1 || p.y > ext.y2) this.cy.center(n);
    say(n);
  }
}
