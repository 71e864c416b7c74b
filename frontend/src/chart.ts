// The link chart: Cytoscape.js with typed looks, expand/collapse/hide/pin, type filter, time window, search.

import cytoscape from "cytoscape";
import type { Core, ElementDefinition, NodeSingular, EdgeSingular, StylesheetJson } from "cytoscape";
import fcose from "cytoscape-fcose";
import dagre from "cytoscape-dagre";
import { api, type GEdge, type GNode, type Subgraph } from "./api";
import { ms } from "./dom";
import { CHART_TYPES, EDGE_COLORS, glyphUri, look } from "./icons";

cytoscape.use(fcose);
cytoscape.use(dagre);

const LOW_ZOOM = 0.35;

export type LayoutName = "fcose" | "dagre" | "breadthfirst" | "concentric";

/** Edges whose existence depends on one visit (hidden with it by the time window). */
const VISIT_EDGES = new Set(["HAD", "AT", "ATTENDED_BY", "DISPENSED", "EVIDENCED_BY", "TREATED_BY"]);

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
      },
    },
    {
      selector: "edge",
      style: {
        width: "data(w)",
        "line-color": "#9aa5b1",
        "curve-style": "straight",
        "target-arrow-shape": "triangle",
        "target-arrow-color": "#9aa5b1",
        "arrow-scale": 0.6,
        opacity: 0.85,
        label: "",
      },
    },
  ];
  for (const type of [...CHART_TYPES, "Lead"]) {
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
    { selector: "node[?risky]", style: { "border-width": 2, "border-color": "#fa8c16" } },
    { selector: "node.member", style: { "border-width": 3, "border-color": "#cf1322" } },
    { selector: "node.evidence", style: { "border-width": 3, "border-color": "#cf1322", "background-color": "#e8684a" } },
    { selector: "node.pinned", style: { "border-width": 4, "border-style": "double", "border-color": "#111827" } },
    { selector: "node.match", style: { "overlay-color": "#facc15", "overlay-opacity": 0.45, "overlay-padding": 6 } },
    { selector: "node:selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.25, "overlay-padding": 5 } },
    { selector: "edge:selected", style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb" } },
    { selector: "edge.path", style: { "line-color": "#f59e0b", "target-arrow-color": "#f59e0b", width: 6,
      "z-index": 20 } },
    { selector: "node.path", style: { "overlay-color": "#f59e0b", "overlay-opacity": 0.3, "overlay-padding": 6 } },
    { selector: ".faded", style: { opacity: 0.15, "text-opacity": 0 } },
    { selector: ".gone", style: { display: "none" } },
    { selector: "edge.helper", style: { opacity: 0, events: "no" } },
    { selector: "node.lowzoom", style: { "background-image": "none", "border-width": 0 } },
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
    this.cy.on("tap", "node", (ev) => this.events.onSelect?.(ev.target as NodeSingular));
    this.cy.on("tap", "edge", (ev) => this.events.onSelectEdge?.(ev.target as EdgeSingular));
    this.cy.on("tap", (ev) => {
      if (ev.target === this.cy) this.events.onSelect?.(null);
    });
    this.cy.on("dbltap", "node", (ev) => {
      void this.expand((ev.target as NodeSingular).id());
    });
    // Zoomed far out, glyphs are unreadable and cost a draw each: switch them off once when crossing the
    // threshold (labels already disappear through min-zoomed-font-size), never per frame.
    this.cy.on("zoom", () => {
      const low = this.cy.zoom() < LOW_ZOOM;
      if (low !== this.lowZoom) {
        this.lowZoom = low;
        this.cy.batch(() => this.cy.nodes().toggleClass("lowzoom", low));
      }
    });
  }

  destroy(): void {
    this.cy.destroy();
  }

  /** Add a subgraph's nodes and edges (skipping ones already present); returns the ids of new nodes. */
  add(sub: Subgraph, opts: { core?: boolean; around?: NodeSingular } = {}): string[] {
    const els: ElementDefinition[] = [];
    const newNodes: string[] = [];
    for (const n of sub.nodes) {
      if (this.cy.getElementById(n.id).nonempty()) continue;
      newNodes.push(n.id);
      els.push({ group: "nodes", data: this.nodeData(n, !!opts.core), classes: this.nodeClasses(n) });
    }
    const present = new Set(newNodes);
    const has = (id: string) => present.has(id) || this.cy.getElementById(id).nonempty();
    for (const e of sub.edges) {
      if (this.cy.getElementById(e.id).nonempty() || !has(e.source) || !has(e.target)) continue;
      els.push({ group: "edges", data: this.edgeData(e) });
    }
    this.truncated = this.truncated || sub.truncated;
    this.cy.batch(() => {
      const added = this.cy.add(els);
      if (opts.around) {
        const c = opts.around.position();
        const ns = added.nodes();
        const r = 70 + 8 * Math.sqrt(ns.length) * 6;
        ns.forEach((n, i) => {
          const a = (2 * Math.PI * i) / Math.max(1, ns.length);
          n.position({ x: c.x + r * Math.cos(a), y: c.y + r * Math.sin(a) });
        });
      }
    });
    this.applyVisibility();
    return newNodes;
  }

  private nodeData(n: GNode, core: boolean): Record<string, unknown> {
    const props = n.props ?? {};
    const begin = n.type === "Visit" ? ms((props.begntime as string) ?? null) : null;
    const end = n.type === "Visit" ? ms((props.endtime as string) ?? (props.begntime as string) ?? null) : null;
    return {
      id: n.id, type: n.type, key: n.key, label: n.label ?? n.key, props, risk: n.risk,
      risky: (n.risk ?? 0) >= 0.6, core, evidence: props.evidence === true, t0: begin, t1: end ?? begin,
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
    this.truncated = snap.truncated;
    this.cy.viewport({ zoom: snap.zoom, pan: snap.pan });
    this.applyVisibility();
  }

  // ---- layouts ----------------------------------------------------------------------------------------------

  layout(name: LayoutName, eles = this.cy.elements(".gone").absoluteComplement()): Promise<void> {
    const n = eles.nodes().length;
    const animate = n <= 250;
    let opts: cytoscape.LayoutOptions;
    if (name === "fcose") {
      opts = { name: "fcose", quality: n > 800 ? "draft" : "default", randomize: true, animate,
        animationDuration: 400, nodeRepulsion: () => 9000, idealEdgeLength: () => 90, nodeSeparation: 70,
        packComponents: true, fit: true, padding: 30 } as unknown as cytoscape.LayoutOptions;
    } else if (name === "dagre") {
      return this.chainLayout(eles, animate);
    } else if (name === "breadthfirst") {
      opts = { name: "breadthfirst", directed: true, spacingFactor: 1.1, animate, fit: true, padding: 30,
        roots: eles.nodes(".member").filter((x) => x.data("type") === "Person") } as cytoscape.LayoutOptions;
    } else {
      opts = { name: "concentric", animate, fit: true, padding: 30, minNodeSpacing: 12,
        concentric: (node: NodeSingular) => (node.hasClass("member") ? 3 : node.data("type") === "Visit" ? 1 : 2),
        levelWidth: () => 1 } as cytoscape.LayoutOptions;
    }
    return new Promise((resolve) => {
      const l = eles.layout(opts);
      l.one("layoutstop", () => resolve());
      l.run();
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
    if (animate) await cy.animation({ fit: { eles, padding: 30 }, duration: 300 }).play().promise();
    else cy.fit(eles, 30);
  }

  fit(): void {
    this.cy.fit(this.cy.elements(".gone").absoluteComplement(), 30);
  }

  // ---- expand / collapse / hide / pin -----------------------------------------------------------------------

  async expand(nodeId: string, opts: { includeVisits?: boolean; maxNodes?: number } = {}): Promise<string[]> {
    const node = this.cy.getElementById(nodeId);
    // Visits are not ego centres in the API; their few neighbours come with the visit already.
    if (node.empty() || node.data("type") === "Visit" || node.data("type") === "Lead") return [];
    const types = opts.includeVisits ? undefined : CHART_TYPES.filter((t) => t !== "Visit").join(",");
    this.pending++;
    try {
      const sub = await api.ego(nodeId, { depth: 1, types, max_nodes: opts.maxNodes ?? 150 });
      const added = this.add(sub, { around: node as NodeSingular });
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
        const type = n.data("type") as string;
        const gone = !!n.data("manualHidden") || !(this.typeOn.get(type) ?? true) ||
          (type === "Visit" && !this.inWindow(n));
        if (gone !== n.hasClass("gone")) n.toggleClass("gone", gone);
      });
      this.cy.edges().forEach((e: EdgeSingular) => {
        const gone = !VISIT_EDGES.has(e.data("type")) && !this.inWindow(e);
        if (gone !== e.hasClass("gone")) e.toggleClass("gone", gone);
      });
    });
    this.events.onChange?.();
  }

  /** Nodes and edges currently drawn (not hidden by any filter, with both ends drawn). */
  visible(): { nodes: cytoscape.NodeCollection; edges: cytoscape.EdgeCollection } {
    const nodes = this.cy.nodes().filter((n) => !n.hasClass("gone"));
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
    const ids = this.cy.nodes().filter((n) => n.data("type") !== "Visit").map((n) => n.id());
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
}
