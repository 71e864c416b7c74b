// Node type look: colour, shape and a small white glyph (inline SVG) per entity type of the graph model.

export interface TypeLook {
  color: string;
  shape: string;
  size: number;
  glyph: string; // SVG path data in a 24x24 box
}

const PATHS = {
  person: "M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm0 2c-4.4 0-8 2.3-8 5.2V21h16v-1.8c0-2.9-3.6-5.2-8-5.2z",
  practitioner:
    "M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 10v-2c0-2.6 2.6-4.6 6-5v7H5zm8 0v-7c3.4.4 6 2.4 6 5v2h-6zm3-5h1.5v1.5H19V19" +
    "h-1.5v1.5H16V19h-1.5v-1.5H16z",
  institution: "M3 21V8l9-5 9 5v13h-7v-5h-4v5H3zm7.5-12.5v2h-2v2h2v2h3v-2h2v-2h-2v-2h-3z",
  pharmacy: "M4 9l8-6 8 6v12H4V9zm6.5 2v2.5H8v3h2.5V19h3v-2.5H16v-3h-2.5V11h-3z",
  drug: "M8.5 20.5a5 5 0 0 1-3.5-8.5l7-7a5 5 0 0 1 7 7l-7 7a5 5 0 0 1-3.5 1.5zm-2.1-7.1a3 3 0 0 0 4.2 4.2l3.2-3.2" +
    "-4.2-4.2-3.2 3.2z",
  phone: "M7 2h10a1.5 1.5 0 0 1 1.5 1.5v17A1.5 1.5 0 0 1 17 22H7a1.5 1.5 0 0 1-1.5-1.5v-17A1.5 1.5 0 0 1 7 2zm0 3" +
    "v12h10V5H7zm5 13.5a1.2 1.2 0 1 0 0 2.4 1.2 1.2 0 0 0 0-2.4z",
  address: "M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5z",
  visit: "M6 2h9l5 5v15H6V2zm8 1.5V8h4.5M8.5 11h9v1.6h-9zm0 3.5h9v1.6h-9zm0 3.5h6v1.6h-6z",
  lead: "M12 2l10 18H2L12 2zm-1 7v5h2V9h-2zm0 7v2h2v-2h-2z",
  occasion: "M5 4h2V2h2v2h6V2h2v2h2a1 1 0 0 1 1 1v15a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 6v9h12v-9H6zm2 2h3v3H8v-3z",
  burst: "M13 2L4 14h6l-1 8 9-12h-6l1-8z",
  operator: "M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-8 10v-1.5C4 16.5 7.6 14 12 14s8 2.5 8 5.5V21H4zm11-8h5v3h-5z",
  more: "M5 10.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm7 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm7 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z",
};

export const LOOKS: Record<string, TypeLook> = {
  Person: { color: "#1f6fd1", shape: "ellipse", size: 34, glyph: PATHS.person },
  Practitioner: { color: "#13a36b", shape: "round-rectangle", size: 34, glyph: PATHS.practitioner },
  Institution: { color: "#9b2c2c", shape: "round-hexagon", size: 46, glyph: PATHS.institution },
  Pharmacy: { color: "#0e8a8a", shape: "round-diamond", size: 44, glyph: PATHS.pharmacy },
  Drug: { color: "#7b3fc4", shape: "round-pentagon", size: 32, glyph: PATHS.drug },
  Phone: { color: "#e0820b", shape: "round-tag", size: 28, glyph: PATHS.phone },
  Address: { color: "#8a6a2f", shape: "round-triangle", size: 30, glyph: PATHS.address },
  Visit: { color: "#7d8794", shape: "round-rectangle", size: 18, glyph: PATHS.visit },
  Lead: { color: "#d4380d", shape: "star", size: 36, glyph: PATHS.lead },
  Occasion: { color: "#c2410c", shape: "round-rectangle", size: 30, glyph: PATHS.occasion },
  Burst: { color: "#b91c1c", shape: "round-octagon", size: 30, glyph: PATHS.burst },
  Operator: { color: "#4b5563", shape: "round-rectangle", size: 34, glyph: PATHS.operator },
  More: { color: "#64748b", shape: "round-rectangle", size: 30, glyph: PATHS.more },
  Outside: { color: "#9ca3af", shape: "ellipse", size: 26, glyph: PATHS.lead },
};

export const CHART_TYPES = ["Person", "Practitioner", "Institution", "Pharmacy", "Drug", "Phone", "Address", "Visit",
  "Occasion", "Burst", "Operator"];

/** Types the API takes as ego centres and type filters (the graph model's entities). */
export const ENTITY_TYPES = ["Person", "Practitioner", "Institution", "Pharmacy", "Drug", "Phone", "Address"];

export function look(type: string): TypeLook {
  return LOOKS[type] ?? { color: "#555", shape: "ellipse", size: 26, glyph: PATHS.lead };
}

/** White glyph as an SVG data URI (for Cytoscape background images). */
export function glyphUri(type: string): string {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">` +
    `<path fill="#ffffff" fill-rule="evenodd" d="${look(type).glyph}"/></svg>`;
  return `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`;
}

/** Legend swatch: the glyph on the type's colour, as inline SVG markup (trusted, built here). */
export function swatchSvg(type: string, size = 18): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "swatch");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", "24");
  bg.setAttribute("height", "24");
  bg.setAttribute("rx", type === "Person" ? "12" : "5");
  bg.setAttribute("fill", look(type).color);
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", look(type).glyph);
  p.setAttribute("fill", "#fff");
  p.setAttribute("fill-rule", "evenodd");
  p.setAttribute("transform", "translate(3.6 3.6) scale(0.7)");
  svg.append(bg, p);
  return svg;
}

export const EDGE_COLORS: Record<string, string> = {
  HAD: "#9aa5b1",
  AT: "#9aa5b1",
  ATTENDED_BY: "#5fb98f",
  TREATED_BY: "#5fb98f",
  DISPENSED: "#a27fd6",
  WORKS_AT: "#13a36b",
  USES_PHONE: "#e0820b",
  LIVES_AT: "#a8894f",
  VISITED: "#4a8fe0",
  CO_ADMITTED: "#d4380d",
  INVOLVES: "#d4380d",
  EVIDENCED_BY: "#d4380d",
  ADMITTED_IN: "#e8684a",
  ADMITTED_AT: "#9b2c2c",
  OPERATES_AT: "#4b5563",
  SWIPED: "#b91c1c",
  CARD_IN: "#f08b7a",
  FILLED_AT: "#0e8a8a",
  OBTAINED: "#7b3fc4",
  PRESCRIBED: "#13a36b",
  MORE: "#94a3b8",
};
