// Legend of what is on the chart: node types (icon and colour) and relationship types in words.

import type { LinkChart } from "../chart";
import { clear, h } from "../dom";
import { relName } from "../features";
import { EDGE_COLORS, swatchSvg } from "../icons";
import { t } from "../i18n";

export function legend(): { element: HTMLElement; update: (chart: LinkChart) => void } {
  const element = h("section", { class: "legend", id: "chart-legend", "aria-label": t("chart.legend") });
  const update = (chart: LinkChart) => {
    clear(element);
    const types = [...new Set(chart.cy.nodes().map((n) => String(n.data("type"))))].filter((x) => x !== "Group");
    const rels = [...new Set(chart.cy.edges().map((e) => String(e.data("type"))))].filter((x) => !x.startsWith("__"));
    element.append(h("strong", {}, `${t("chart.legend")}: `),
      ...types.map((ty) => h("span", { class: "lg-item", "data-legend-type": ty }, swatchSvg(ty, 14), ` ${t(`type.${ty}`)}`)),
      h("strong", {}, ` ${t("chart.legend_edges")}: `),
      ...rels.map((r) => h("span", { class: "lg-item", "data-legend-rel": r },
        h("span", { class: "lg-line", style: `background:${EDGE_COLORS[r] ?? "#9aa5b1"}` }), ` ${relName(r)}`)));
  };
  return { element, update };
}
