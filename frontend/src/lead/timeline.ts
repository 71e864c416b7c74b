// Timeline strip under the chart: a histogram of the chart's visits (evidence and drawn visits), the occasions and
// bursts as marks, a brush that filters the chart by time, and the two keyboard-usable window sliders.

import type { LinkChart } from "../chart";
import { h, ms, num } from "../dom";
import { t } from "../i18n";

const DAY = 86_400_000;
const W = 1000;
const H = 64;
const NS = "http://www.w3.org/2000/svg";

function svgEl(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export interface TimelineHandle {
  element: HTMLElement;
  /** Rebuild bins and sliders from what is on the chart now. */
  setup: () => void;
}

export function timelineStrip(chart: LinkChart, evidenceTimes: Array<{ id: string; at: string | null }>): TimelineHandle {
  const timeFrom = h("input", { type: "range", id: "time-from", min: "0", max: "0", value: "0", step: "1",
    "aria-label": t("chart.time_from") });
  const timeTo = h("input", { type: "range", id: "time-to", min: "0", max: "0", value: "0", step: "1",
    "aria-label": t("chart.time_to") });
  const timeLabel = h("span", { class: "time-label", id: "time-label", "aria-live": "polite" });
  const timeReset = h("button", { class: "small ghost", id: "time-reset" }, t("chart.time_all"));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "timeline-svg",
    id: "timeline-svg", role: "img", "aria-label": t("chart.timeline_aria") }) as SVGSVGElement;
  // Dates under the histogram (start, middle, end): without them a bar could not be told in time.
  const axis = h("div", { class: "tl-dates muted", id: "timeline-dates", "aria-hidden": "true" });
  const strip = h("div", { class: "timeline-strip no-print", id: "timeline-strip" },
    h("div", { class: "time-bar" }, h("span", {}, `${t("chart.time")} `), timeFrom, timeTo, timeLabel, timeReset),
    h("div", { class: "timeline-title muted" }, t("chart.timeline")), svg, axis);
  let domain: [number, number] | null = null;
  let brush: SVGElement | null = null;

  const times = (): number[] => {
    const seen = new Set<string>();
    const out: number[] = [];
    for (const v of evidenceTimes) {
      const m = ms(v.at);
      if (m !== null) {
        out.push(m);
        seen.add(`Visit:${v.id}`);
      }
    }
    chart.cy.nodes('[type = "Visit"]').forEach((n) => {
      if (!seen.has(n.id()) && typeof n.data("t0") === "number") out.push(n.data("t0"));
    });
    return out;
  };

  const xOf = (m: number) => (domain ? ((m - domain[0]) / Math.max(1, domain[1] - domain[0])) * W : 0);
  const msOf = (x: number) => (domain ? domain[0] + (x / W) * (domain[1] - domain[0]) : 0);

  const draw = () => {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    const ts = times();
    if (!domain || !ts.length) return;
    const day = (m: number) => new Date(m).toISOString().slice(0, 10);
    axis.append(h("span", {}, day(domain[0])), h("span", {}, day((domain[0] + domain[1]) / 2)),
      h("span", {}, day(domain[1])));
    const span = domain[1] - domain[0];
    const bin = span <= 120 * DAY ? DAY : 7 * DAY;
    const n = Math.max(1, Math.ceil((span + 1) / bin));
    const counts = new Array<number>(n).fill(0);
    for (const m of ts) counts[Math.min(n - 1, Math.max(0, Math.floor((m - domain[0]) / bin)))]++;
    const max = Math.max(...counts);
    const bw = W / n;
    counts.forEach((c, i) => {
      if (!c) return;
      const bh = Math.max(2, ((H - 14) * c) / max);
      const r = svgEl("rect", { x: i * bw + 0.5, y: H - 12 - bh, width: Math.max(1, bw - 1), height: bh,
        class: "tl-bar", "data-count": c });
      const title = svgEl("title", {});
      title.textContent = `${new Date(domain![0] + i * bin).toISOString().slice(0, 10)}: ${num(c)}`;
      r.append(title);
      svg.append(r);
    });
    // Occasions (admission batches) and bursts as marks along the bottom.
    chart.cy.nodes('[type = "Occasion"], [type = "Burst"]').forEach((nd) => {
      const m = nd.data("t0");
      if (typeof m !== "number") return;
      svg.append(svgEl("rect", { x: xOf(m) - 1.5, y: H - 10, width: 3, height: 9, class: `tl-mark tl-${nd.data("type")}` }));
    });
    svg.append(svgEl("line", { x1: 0, y1: H - 12, x2: W, y2: H - 12, class: "tl-axis" }));
    brush = svgEl("rect", { x: 0, y: 0, width: 0, height: H - 12, class: "tl-brush", id: "timeline-brush" });
    svg.append(brush);
    showBrush();
  };

  const showBrush = () => {
    const win = chart.timeWindow();
    if (!brush || !domain) return;
    if (!win) {
      brush.setAttribute("width", "0");
      return;
    }
    brush.setAttribute("x", String(xOf(win[0])));
    brush.setAttribute("width", String(Math.max(2, xOf(win[1]) - xOf(win[0]))));
  };

  const showLabel = () => {
    if (!domain) {
      timeLabel.textContent = "–";
      return;
    }
    const a = domain[0] + Number(timeFrom.value) * DAY;
    const b = domain[0] + Number(timeTo.value) * DAY;
    timeLabel.textContent = `${new Date(a).toISOString().slice(0, 10)} – ${new Date(b).toISOString().slice(0, 10)}`;
  };

  const apply = (a: number | null, b: number | null) => {
    chart.setTimeWindow(a === null || b === null ? null : [a, b]);
    showBrush();
  };

  const setup = () => {
    const ts = times();
    const dom = chart.timeDomain();
    const lo = Math.min(dom?.[0] ?? Infinity, ...ts);
    const hi = Math.max(dom?.[1] ?? -Infinity, ...ts);
    domain = lo <= hi ? [Math.floor(lo / DAY) * DAY, hi] : null;
    const days = domain ? Math.max(1, Math.ceil((domain[1] - domain[0]) / DAY)) : 0;
    for (const r of [timeFrom, timeTo]) {
      r.max = String(days);
      r.disabled = !domain;
    }
    timeFrom.value = "0";
    timeTo.value = String(days);
    chart.setTimeWindow(null);
    showLabel();
    draw();
  };

  let frame = 0;
  const onSlider = (moved: HTMLInputElement) => {
    if (Number(timeFrom.value) > Number(timeTo.value)) {
      if (moved === timeFrom) timeTo.value = timeFrom.value;
      else timeFrom.value = timeTo.value;
    }
    showLabel();
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (!domain) return;
      const full = Number(timeFrom.value) === 0 && Number(timeTo.value) === Number(timeTo.max);
      const a = domain[0] + Number(timeFrom.value) * DAY;
      const b = domain[0] + (Number(timeTo.value) + 1) * DAY - 1;
      if (full) apply(null, null);
      else apply(a, b);
    });
  };
  timeFrom.addEventListener("input", () => onSlider(timeFrom));
  timeTo.addEventListener("input", () => onSlider(timeTo));
  timeReset.addEventListener("click", () => setup());

  // Brush: drag across the histogram to keep that period; a click without a drag clears the window.
  let start: number | null = null;
  const svgX = (ev: PointerEvent) => {
    const r = svg.getBoundingClientRect();
    return Math.min(W, Math.max(0, ((ev.clientX - r.left) / Math.max(1, r.width)) * W));
  };
  svg.addEventListener("pointerdown", (ev) => {
    if (!domain) return;
    start = svgX(ev);
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener("pointermove", (ev) => {
    if (start === null || !brush) return;
    const x = svgX(ev);
    brush.setAttribute("x", String(Math.min(start, x)));
    brush.setAttribute("width", String(Math.abs(x - start)));
  });
  svg.addEventListener("pointerup", (ev) => {
    if (start === null || !domain) return;
    const x = svgX(ev);
    const [a, b] = [Math.min(start, x), Math.max(start, x)];
    start = null;
    if (b - a < 3) {
      setup();
      return;
    }
    const ma = msOf(a);
    const mb = msOf(b);
    timeFrom.value = String(Math.max(0, Math.floor((ma - domain[0]) / DAY)));
    timeTo.value = String(Math.min(Number(timeTo.max), Math.floor((mb - domain[0]) / DAY)));
    showLabel();
    apply(ma, mb);
  });
  return { element: strip, setup };
}
