// Take-away: PNG and SVG of the current chart, and GraphML (Gephi / i2 / Bloom) built client-side.

import type { Core } from "cytoscape";
import type { LinkChart } from "./chart";
import { download } from "./dom";
import { look } from "./icons";
import { chartSvgDocument, type SvgFrame } from "./svg";

export function chartPng(cy: Core, scale = 2): Blob {
  return cy.png({ output: "blob", full: true, scale, bg: "#ffffff", maxWidth: 6000, maxHeight: 6000 }) as Blob;
}

export function chartPngDataUrl(cy: Core, scale = 1.5): string {
  return cy.png({ output: "base64uri", full: true, scale, bg: "#ffffff", maxWidth: 2400, maxHeight: 2400 });
}


function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");
}

type AttrType = "string" | "double" | "int" | "boolean";

function attrType(v: unknown): AttrType {
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "double";
  return "string";
}

function attrValue(v: unknown): string {
  if (Array.isArray(v)) return v.map(String).join(";");
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function hexRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [128, 128, 128];
}

/**
 * GraphML of what the chart currently shows: node attributes (type, key, label, risk, every property, x/y,
 * colour and size that Gephi reads) and edge attributes (type, visits, amount, first, last, properties).
 */
export function chartGraphml(chart: LinkChart, title = "fraudnet"): string {
  const { nodes, edges } = chart.visible();
  const nodeKeys = new Map<string, AttrType>([
    ["label", "string"], ["type", "string"], ["key", "string"], ["risk", "double"], ["evidence", "boolean"],
    ["member", "boolean"], ["pinned", "boolean"], ["x", "double"], ["y", "double"], ["size", "double"],
    ["r", "int"], ["g", "int"], ["b", "int"],
  ]);
  const edgeKeys = new Map<string, AttrType>([
    ["type", "string"], ["label", "string"], ["visits", "int"], ["amount", "double"], ["weight", "double"],
    ["first", "string"], ["last", "string"],
  ]);
  const nodeRows: Array<[string, Record<string, unknown>]> = [];
  nodes.forEach((n) => {
    const p = n.position();
    const [r, g, b] = hexRgb(look(n.data("type")).color);
    const attrs: Record<string, unknown> = {
      label: n.data("label"), type: n.data("type"), key: n.data("key"), risk: n.data("risk"),
      evidence: !!n.data("evidence"), member: n.hasClass("member"), pinned: n.hasClass("pinned"),
      x: Math.round(p.x * 100) / 100, y: Math.round(-p.y * 100) / 100, size: look(n.data("type")).size, r, g, b,
    };
    for (const [k, v] of Object.entries((n.data("props") ?? {}) as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      const name = k in attrs ? `prop_${k}` : k;
      attrs[name] = v;
      if (!nodeKeys.has(name)) nodeKeys.set(name, attrType(v));
    }
    nodeRows.push([n.id(), attrs]);
  });
  const edgeRows: Array<[string, string, string, Record<string, unknown>]> = [];
  edges.forEach((e) => {
    const amount = Number(e.data("amount")) || 0;
    const attrs: Record<string, unknown> = {
      type: e.data("type"), label: e.data("type"), visits: e.data("visits") ?? 0, amount,
      weight: amount > 0 ? amount : Number(e.data("visits")) || 1, first: e.data("first"), last: e.data("last"),
    };
    for (const [k, v] of Object.entries((e.data("props") ?? {}) as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      const name = k in attrs ? `prop_${k}` : k;
      attrs[name] = v;
      if (!edgeKeys.has(name)) edgeKeys.set(name, attrType(v));
    }
    edgeRows.push([e.id(), e.source().id(), e.target().id(), attrs]);
  });
  // A key declared int must hold ints: widen to double/string when values disagree.
  const widen = (keys: Map<string, AttrType>, rows: Array<Record<string, unknown>>) => {
    for (const [k, declared] of keys) {
      let type = declared;
      for (const row of rows) {
        const v = row[k];
        if (v === null || v === undefined) continue;
        const t = attrType(v);
        if (t === type) continue;
        if ((type === "int" && t === "double") || (type === "double" && t === "int")) type = "double";
        else type = "string";
      }
      keys.set(k, type);
    }
  };
  widen(nodeKeys, nodeRows.map((r) => r[1]));
  widen(edgeKeys, edgeRows.map((r) => r[3]));

  const keyId = (scope: "n" | "e", name: string) => `${scope}_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" ' +
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ' +
      'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">',
    `  <!-- ${xmlEscape(title).replace(/--/g, "- -")}; exported by fraudnet link chart ${new Date().toISOString()} -->`,
  ];
  for (const [k, type] of nodeKeys) {
    out.push(`  <key id="${keyId("n", k)}" for="node" attr.name="${xmlEscape(k)}" attr.type="${type}"/>`);
  }
  for (const [k, type] of edgeKeys) {
    out.push(`  <key id="${keyId("e", k)}" for="edge" attr.name="${xmlEscape(k)}" attr.type="${type}"/>`);
  }
  out.push(`  <graph id="${xmlEscape(title)}" edgedefault="directed">`);
  const dataLines = (scope: "n" | "e", attrs: Record<string, unknown>, keys: Map<string, AttrType>) => {
    const lines: string[] = [];
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || !keys.has(k)) continue;
      let text = attrValue(v);
      const type = keys.get(k);
      if (type === "int" && typeof v === "number") text = String(Math.round(v));
      lines.push(`      <data key="${keyId(scope, k)}">${xmlEscape(text)}</data>`);
    }
    return lines;
  };
  for (const [id, attrs] of nodeRows) {
    out.push(`    <node id="${xmlEscape(id)}">`, ...dataLines("n", attrs, nodeKeys), "    </node>");
  }
  for (const [id, s, t, attrs] of edgeRows) {
    out.push(`    <edge id="${xmlEscape(id)}" source="${xmlEscape(s)}" target="${xmlEscape(t)}">`,
      ...dataLines("e", attrs, edgeKeys), "    </edge>");
  }
  out.push("  </graph>", "</graphml>", "");
  return out.join("\n");
}

export function downloadPng(cy: Core, base: string): void {
  download(`${base}.png`, chartPng(cy));
}

/** PNG of the chart with the export frame: header lines (title, lead id, date, user) above, legend below. */
export async function downloadPngFramed(cy: Core, base: string, frame: SvgFrame): Promise<void> {
  const src = cy.png({ output: "base64uri", full: true, scale: 2, bg: "#ffffff", maxWidth: 6000, maxHeight: 6000 });
  const img = new Image();
  await new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error("chart image"));
    img.src = src;
  });
  const head = 26 * frame.lines.length + 16;
  const foot = frame.legend.length ? 44 : 0;
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(img.width, 1200);
  canvas.height = img.height + head + foot;
  const g = canvas.getContext("2d")!;
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#1d2733";
  frame.lines.forEach((line, i) => {
    g.font = `${i === 0 ? "bold 22px" : "16px"} "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif`;
    g.fillText(line, 16, 30 + i * 26);
  });
  g.drawImage(img, (canvas.width - img.width) / 2, head);
  let x = 16;
  g.font = '16px "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif';
  for (const item of frame.legend) {
    g.fillStyle = look(item.type).color;
    g.fillRect(x, canvas.height - 32, 18, 18);
    g.fillStyle = "#1d2733";
    g.fillText(item.label, x + 24, canvas.height - 17);
    x += 40 + g.measureText(item.label).width;
  }
  const blob = await new Promise<Blob>((resolve) => canvas.toBlob((b) => resolve(b!), "image/png"));
  download(`${base}.png`, blob);
}

export function downloadSvg(chart: LinkChart, base: string, frame?: SvgFrame): void {
  download(`${base}.svg`, new Blob([chartSvgDocument(chart, base, frame)], { type: "image/svg+xml" }));
}

export function downloadGraphml(chart: LinkChart, base: string): void {
  download(`${base}.graphml`, new Blob([chartGraphml(chart, base)], { type: "application/graphml+xml" }));
}
