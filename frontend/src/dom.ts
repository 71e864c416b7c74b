// Small DOM and formatting helpers: element builder (no innerHTML of data), money, dates, downloads.

import { lang } from "./i18n";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** Build an element: attributes (`on*` become listeners, booleans toggle), children as nodes or text. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]):
  HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function money(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  return `¥${Number(v).toLocaleString(lang() === "zh" ? "zh-CN" : "en-US", {
    minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function num(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  return Number(v).toLocaleString(lang() === "zh" ? "zh-CN" : "en-US", { maximumFractionDigits: digits });
}

/** `2025-03-04T09:10:00` -> `2025-03-04 09:10` (no timezone shifting: the data are local times). */
export function dt(v: string | null | undefined, withTime = true): string {
  if (!v) return "";
  const s = String(v).replace("T", " ");
  return withTime ? s.slice(0, 16) : s.slice(0, 10);
}

export function day(v: string | null | undefined): string {
  return dt(v, false);
}

/** Milliseconds since epoch of an ISO datetime read as UTC (consistent for windows and sliders). */
export function ms(v: string | null | undefined): number | null {
  if (!v) return null;
  const s = String(v);
  const iso = s.length === 10 ? `${s}T00:00:00Z` : /[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(" ", "T")}Z`;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

export function download(name: string, data: Blob): void {
  const url = URL.createObjectURL(data);
  const a = h("a", { href: url, download: name, style: "display:none" });
  document.body.append(a);
  a.click();
  setTimeout(() => {
    a.remove();
    URL.revokeObjectURL(url);
  }, 1000);
}

let toastTimer = 0;
export function toast(message: string, kind: "info" | "error" = "info"): void {
  let el = document.getElementById("toast");
  if (!el) {
    el = h("div", { id: "toast", role: "status" });
    document.body.append(el);
  }
  el.textContent = message;
  el.className = `toast ${kind} show`;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => el?.classList.remove("show"), 3500);
}

export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? num(v) : num(v, 3);
  if (typeof v === "boolean") return v ? "✓" : "✗";
  if (Array.isArray(v)) return v.map(fmtValue).join(", ");
  if (typeof v === "object") {
    return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${fmtValue(x)}`).join("; ");
  }
  const s = String(v);
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(s) ? dt(s) : s;
}
