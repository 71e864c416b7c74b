// Vector export of the chart as it is drawn: our own SVG serialisation (shapes, glyphs, edges, labels).

import type { NodeSingular } from "cytoscape";
import type { LinkChart } from "./chart";
import { CHART_TYPES, EDGE_COLORS, look } from "./icons";

function esc(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** Regular polygon points (unit radius), first vertex at `start` radians. */
function regular(n: number, start: number): Array<[number, number]> {
  return Array.from({ length: n }, (_, i) => {
    const a = start + (2 * Math.PI * i) / n;
    return [Math.cos(a), Math.sin(a)] as [number, number];
  });
}

const SHAPES: Record<string, Array<[number, number]>> = {
  "round-hexagon": regular(6, 0),
  "round-diamond": [[0, -1], [1, 0], [0, 1], [-1, 0]],
  "round-pentagon": regular(5, -Math.PI / 2),
  "round-triangle": regular(3, -Math.PI / 2),
  "round-tag": [[-1, -1], [0.5, -1], [1, 0], [0.5, 1], [-1, 1]],
  star: Array.from({ length: 10 }, (_, i) => {
    const a = -Math.PI / 2 + (Math.PI * i) / 5;
    const r = i % 2 ? 0.45 : 1;
    return [r * Math.cos(a), r * Math.sin(a)] as [number, number];
  }),
};

function nodeShape(n: NodeSingular, fill: string, stroke: string, strokeW: number): string {
  const { x, y } = n.position();
  const l = look(n.data("type"));
  const half = l.size / 2;
  const paint = `fill="${fill}" stroke="${stroke}" stroke-width="${strokeW}"`;
  if (l.shape === "ellipse") return `<circle cx="${r2(x)}" cy="${r2(y)}" r="${half}" ${paint}/>`;
  if (l.shape === "round-rectangle") {
    return `<rect x="${r2(x - half)}" y="${r2(y - half)}" width="${l.size}" height="${l.size}" rx="${l.size / 6}" ${paint}/>`;
  }
  const pts = (SHAPES[l.shape] ?? SHAPES["round-hexagon"]).map(([px, py]) => `${r2(x + px * half)},${r2(y + py * half)}`);
  return `<polygon points="${pts.join(" ")}" stroke-linejoin="round" ${paint}/>`;
}

function truncate(s: string, max = 18): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** SVG document of the chart's drawn elements (hidden ones left out), with a white background. */
/** Header lines (title, lead id, date, user) and legend entries written around the chart in the export. */
export interface SvgFrame {
  lines: string[];
  legend: Array<{ type: string; label: string }>;
}

export function chartSvgDocument(chart: LinkChart, title = "fraudnet", frame?: SvgFrame): string {
  const { nodes, edges } = chart.visible();
  const bb = nodes.union(edges).boundingBox({ includeLabels: true });
  // Wide side margins: the SVG labels are not cut where Cytoscape ellipsises them, so the outermost can be longer.
  const padX = 90;
  const head = frame ? 18 * frame.lines.length + 12 : 0;
  const foot = frame?.legend.length ? 34 : 0;
  const pad = 24;
  const w = Math.max(1, Math.ceil(bb.w + 2 * padX), frame ? 640 : 1);
  const h = Math.max(1, Math.ceil(bb.h + 2 * pad + head + foot));
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${w}" height="${h}" ` +
      `viewBox="0 0 ${w} ${h}" font-family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif">`,
    `<title>${esc(title)}</title>`,
    "<defs>",
  ];
  for (const type of CHART_TYPES) {
    out.push(`<symbol id="glyph-${type}" viewBox="0 0 24 24"><path fill="#fff" fill-rule="evenodd" ` +
      `d="${look(type).glyph}"/></symbol>`);
  }
  const colors = new Set(Object.values(EDGE_COLORS).concat("#9aa5b1"));
  for (const c of colors) {
    // Arrowheads of a fixed size: sized by stroke width they grew as wide as a node on thick (costly) links.
    out.push(`<marker id="arrow-${c.slice(1)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" ` +
      `markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">` +
      `<path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`);
  }
  out.push("</defs>", `<rect width="${w}" height="${h}" fill="#ffffff"/>`);
  frame?.lines.forEach((line, i) => out.push(`<text class="frame" x="12" y="${20 + i * 18}" ` +
    `font-size="${i === 0 ? 15 : 11}" font-weight="${i === 0 ? 700 : 400}" fill="#1d2733">${esc(line)}</text>`));
  if (frame?.legend.length) {
    let lx = 12;
    const ly = h - 20;
    out.push('<g class="legend">');
    for (const item of frame.legend) {
      out.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="14" rx="3" fill="${look(item.type).color}"/>`,
        `<text x="${lx + 18}" y="${ly + 1}" font-size="11" fill="#1d2733">${esc(item.label)}</text>`);
      lx += 30 + 12 * item.label.length;
    }
    out.push("</g>");
  }
  out.push(`<g transform="translate(${r2(padX + (w - 2 * padX - bb.w) / 2 - bb.x1)} ${r2(pad + head - bb.y1)})">`,
    '<g class="edges">');
  edges.forEach((e) => {
    const s = e.source().position();
    const t = e.target().position();
    const dx = t.x - s.x;
    const dy = t.y - s.y;
    const len = Math.hypot(dx, dy) || 1;
    const rs = look(e.source().data("type")).size / 2;
    const rt = look(e.target().data("type")).size / 2 + 2;
    const type = e.data("type") as string;
    const color = EDGE_COLORS[type] ?? "#9aa5b1";
    const dash = type === "CO_ADMITTED" ? ' stroke-dasharray="6 4"' : "";
    const arrow = type === "CO_ADMITTED" ? "" : ` marker-end="url(#arrow-${color.slice(1)})"`;
    const opacity = e.hasClass("faded") ? 0.15 : 0.85;
    out.push(`<line data-id="${esc(e.id())}" data-type="${esc(type)}" x1="${r2(s.x + (dx * rs) / len)}" ` +
      `y1="${r2(s.y + (dy * rs) / len)}" x2="${r2(t.x - (dx * rt) / len)}" y2="${r2(t.y - (dy * rt) / len)}" ` +
      `stroke="${color}" stroke-width="${r2(Number(e.data("w")) || 1)}" opacity="${opacity}"${dash}${arrow}/>`);
  });
  out.push("</g>", '<g class="nodes">');
  nodes.forEach((n) => {
    const type = n.data("type") as string;
    const l = look(type);
    const { x, y } = n.position();
    let fill = l.color;
    let stroke = "#ffffff";
    let sw = 1;
    if (n.hasClass("member")) [stroke, sw] = ["#cf1322", 3];
    if (n.hasClass("evidence")) [fill, stroke, sw] = ["#e8684a", "#cf1322", 3];
    if (n.hasClass("pinned")) [stroke, sw] = ["#111827", 4];
    const g = l.size * 0.62;
    const label = truncate(String(n.data("label") ?? n.data("key") ?? ""));
    out.push(`<g data-id="${esc(n.id())}" data-type="${esc(type)}" opacity="${n.hasClass("faded") ? 0.15 : 1}">`,
      nodeShape(n, fill, stroke, sw),
      `<use href="#glyph-${type}" xlink:href="#glyph-${type}" x="${r2(x - g / 2)}" y="${r2(y - g / 2)}" ` +
        `width="${r2(g)}" height="${r2(g)}"/>`,
      `<text x="${r2(x)}" y="${r2(y + l.size / 2 + 12)}" font-size="${type === "Visit" ? 8 : 10}" ` +
        `text-anchor="middle" fill="#1d2733" paint-order="stroke" stroke="#ffffff" stroke-width="3">` +
        `${esc(label)}</text>`,
      "</g>");
  });
  out.push("</g>", "</g>", "</svg>", "");
  return out.join("\n");
}
