"""Referral package (移送材料) of a case file: PDF (chart, legend, header, evidence, explanations), GraphML with
positions and annotations, and i2 Analyst's Notebook exchange XML (.anx).

Every exporter takes a `ChartExport`: the chart's nodes and edges as the reader may see them (already masked
for their role), the positions and annotations saved in the case file, the lead, the user and the time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from fraudnet.exports.graphml import subgraph_to_graphml
from fraudnet.graph.model import Edge, Node, Subgraph

__all__ = ["ChartExport", "casefile_graphml", "casefile_anx", "casefile_pdf", "TYPE_NAMES", "EDGE_NAMES", "KIND_NAMES",
           "SEVERITY_NAMES",
           "ANX_MEDIA_TYPE", "PDF_MEDIA_TYPE"]

ANX_MEDIA_TYPE = "application/xml"
PDF_MEDIA_TYPE = "application/pdf"

# Node types and relationship names in words (zh, en), shared with the legend of every export.
TYPE_NAMES: dict[str, tuple[str, str]] = {
    "Person": ("参保人", "Person"), "Practitioner": ("医师/药师", "Practitioner"),
    "Institution": ("医疗机构", "Institution"), "Pharmacy": ("定点药店", "Pharmacy"), "Drug": ("药品", "Drug"),
    "Phone": ("电话", "Phone"), "Address": ("地址", "Address"), "Visit": ("就诊", "Visit"),
    "Occasion": ("同进同出批次", "Co-admission occasion"), "Burst": ("集中刷卡时段", "Swipe burst"),
    "Operator": ("经办人", "Operator"), "Lead": ("线索", "Lead"), "Outside": ("超出权限范围", "Outside your scope"),
}
EDGE_NAMES: dict[str, tuple[str, str]] = {
    "HAD": ("就诊", "had visit"), "AT": ("就诊于", "at"), "ATTENDED_BY": ("主诊医师", "attended by"),
    "TREATED_BY": ("诊治", "treated by"), "DISPENSED": ("配药", "dispensed"), "WORKS_AT": ("执业于", "works at"),
    "USES_PHONE": ("使用电话", "uses phone"), "LIVES_AT": ("居住于", "lives at"), "VISITED": ("就诊于", "visited"),
    "CO_ADMITTED": ("同日入院", "admitted together"), "ADMITTED_IN": ("入院批次", "admitted in"),
    "ADMITTED_AT": ("入院机构", "admitted at"), "OPERATES_AT": ("经办于", "operates at"),
    "SWIPED": ("集中刷卡", "swiped"), "CARD_IN": ("卡被刷", "card swiped in"), "FILLED_AT": ("取药于", "filled at"),
    "OBTAINED": ("取得药品", "obtained"), "PRESCRIBED": ("开具", "prescribed"), "OUTSIDE": ("超出权限", "outside"),
}
# Lead kinds and severities in words for the PDF's header (other kinds keep their code).
KIND_NAMES: dict[str, tuple[str, str]] = {
    "collusion_ring": ("合谋团伙（同进同出）", "Collusion ring"),
    "card_skimming": ("集中刷卡（盗刷套现）", "Card skimming"),
    "drug_resale": ("药品倒卖", "Drug resale"),
}
SEVERITY_NAMES: dict[str, tuple[str, str]] = {"red": ("红色预警", "red"), "orange": ("橙色预警", "orange"),
                                              "yellow": ("黄色预警", "yellow")}
_COLORS = {"Person": "#1f6fd1", "Practitioner": "#13a36b", "Institution": "#9b2c2c", "Pharmacy": "#0e8a8a",
           "Drug": "#7b3fc4", "Phone": "#e0820b", "Address": "#8a6a2f", "Visit": "#7d8794", "Occasion": "#c2410c",
           "Burst": "#b91c1c", "Operator": "#4b5563", "Lead": "#d4380d", "Outside": "#9ca3af"}
# Link colours by relationship, as on screen (frontend/src/icons.ts EDGE_COLORS): in grey the PDF's chart could
# not tell an admission from a doctor's link.
_EDGE_COLORS = {"HAD": "#9aa5b1", "AT": "#9aa5b1", "ATTENDED_BY": "#5fb98f", "TREATED_BY": "#5fb98f",
                "DISPENSED": "#a27fd6", "WORKS_AT": "#13a36b", "USES_PHONE": "#e0820b", "LIVES_AT": "#a8894f",
                "VISITED": "#4a8fe0", "CO_ADMITTED": "#d4380d", "ADMITTED_IN": "#e8684a", "ADMITTED_AT": "#9b2c2c",
                "OPERATES_AT": "#4b5563", "SWIPED": "#b91c1c", "CARD_IN": "#f08b7a", "FILLED_AT": "#0e8a8a",
                "OBTAINED": "#7b3fc4", "PRESCRIBED": "#13a36b"}
#: Longest node label drawn in the PDF's chart (longer ones end in "…").
PDF_LABEL_CHARS = 24
# i2 icon types (standard Analyst's Notebook icon names) per node type.
_ANX_ICONS = {"Person": "Person", "Practitioner": "Doctor", "Institution": "Hospital", "Pharmacy": "Shop",
              "Drug": "Drugs", "Phone": "Phone", "Address": "Address", "Visit": "Document", "Occasion": "Event",
              "Burst": "Event", "Operator": "Person", "Lead": "Warning", "Outside": "Question"}


@dataclass
class ChartExport:
    """What a referral package shows, as the reader may see it."""

    lead: dict[str, Any]
    chart: Subgraph
    positions: dict[str, tuple[float, float]]
    user: str
    at: datetime
    title: str
    lang: str = "zh"
    node_notes: dict[str, str] = field(default_factory=dict)
    edge_notes: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    casefile_id: str | None = None
    version: int | None = None

    def word(self, pair: tuple[str, str]) -> str:
        return pair[0] if self.lang == "zh" else pair[1]


def _edge_text(e: Edge, lang: str) -> str:
    name = EDGE_NAMES.get(e.type, (e.type, e.type))
    summary = (e.props or {}).get("summary_zh" if lang == "zh" else "summary_en")
    base = name[0] if lang == "zh" else name[1]
    return f"{base}: {summary}" if summary else base


def _node_text(n: Node, lang: str) -> str:
    """A node's label in the PDF: time nodes in words as on screen ("2025-01-05 · 15人入院", "… · 6张卡/20分钟")."""
    p = n.props or {}
    if n.type == "Occasion" and p.get("persons") is not None:
        return f"{p.get('date', '')} · {p['persons']}" + ("人入院" if lang == "zh" else " admitted")
    if n.type == "Burst" and p.get("cards") is not None:
        at = str(p.get("start") or "").replace("T", " ")[:16]
        return (f"{at} · {p['cards']}张卡/{p.get('minutes', 0):g}分钟" if lang == "zh"
                else f"{at} · {p['cards']} cards in {p.get('minutes', 0):g} min")
    return n.label or n.key


def _pos(x: ChartExport) -> dict[str, tuple[float, float]]:
    """Saved positions, and a circle for nodes that have none."""
    out = dict(x.positions)
    missing = [n.id for n in x.chart.nodes if n.id not in out]
    for i, nid in enumerate(missing):
        a = 2 * math.pi * i / max(1, len(missing))
        out[nid] = (400 * math.cos(a), 400 * math.sin(a))
    return out


def casefile_graphml(x: ChartExport) -> bytes:
    """GraphML with x/y, the annotations and relationship names in words on each element."""
    pos = _pos(x)
    nodes = [Node(id=n.id, type=n.type, key=n.key, label=n.label, risk=n.risk,
                  props={**n.props, "x": pos[n.id][0], "y": pos[n.id][1],
                         "type_name": x.word(TYPE_NAMES.get(n.type, (n.type, n.type))),
                         **({"annotation": x.node_notes[n.id]} if n.id in x.node_notes else {})})
             for n in x.chart.nodes]
    edges = [Edge(id=e.id, type=e.type, source=e.source, target=e.target, visits=e.visits, amount=e.amount,
                  first=e.first, last=e.last,
                  props={**e.props, "label": _edge_text(e, x.lang),
                         **({"annotation": x.edge_notes[e.id]} if e.id in x.edge_notes else {})})
             for e in x.chart.edges]
    return subgraph_to_graphml(Subgraph(nodes=nodes, edges=edges, truncated=x.chart.truncated))


def casefile_anx(x: ChartExport) -> bytes:
    """i2 Analyst's Notebook exchange XML: Chart → EntityTypeCollection, LinkTypeCollection,
    ChartItemCollection (ChartItem → End → Entity → Icon → IconStyle for nodes; ChartItem → Link → LinkStyle
    for links), Summary with title, author and the notes."""
    pos = _pos(x)
    chart = ET.Element("Chart", {"IdReferenceLinking": "false", "Rigorous": "false"})
    types = sorted({n.type for n in x.chart.nodes})
    et = ET.SubElement(chart, "EntityTypeCollection")
    for t in types:
        ET.SubElement(et, "EntityType", {"Name": t, "IconFile": _ANX_ICONS.get(t, "General")})
    lt = ET.SubElement(chart, "LinkTypeCollection")
    for t in sorted({e.type for e in x.chart.edges}):
        ET.SubElement(lt, "LinkType", {"Name": t, "Colour": "0"})
    items = ET.SubElement(chart, "ChartItemCollection")
    for n in x.chart.nodes:
        px, py = pos[n.id]
        desc = x.node_notes.get(n.id, "")
        item = ET.SubElement(items, "ChartItem", {"Label": n.label or n.key, "Description": desc, "DateSet": "false",
                                                  "XPosition": str(int(round(px)))})
        end = ET.SubElement(item, "End", {"Y": str(int(round(py)))})
        ent = ET.SubElement(end, "Entity", {"EntityId": n.id, "Identity": n.label or n.key})
        icon = ET.SubElement(ent, "Icon")
        ET.SubElement(icon, "IconStyle", {"Type": n.type})
    for e in x.chart.edges:
        item = ET.SubElement(items, "ChartItem", {"Label": _edge_text(e, x.lang),
                                                  "Description": x.edge_notes.get(e.id, ""), "DateSet": "false"})
        link = ET.SubElement(item, "Link", {"End1Id": e.source, "End2Id": e.target})
        ET.SubElement(link, "LinkStyle", {"ArrowStyle": "ArrowOnHead", "Type": e.type, "Strength": "1",
                                          "MlStyle": "MultiplicityMultiple"})
    summary = ET.SubElement(chart, "Summary")
    ET.SubElement(summary, "Title").text = x.title
    ET.SubElement(summary, "Author").text = x.user
    ET.SubElement(summary, "Comments").text = "\n".join(filter(None, [
        f"lead {x.lead.get('lead_id')}", x.lead.get("explanation_zh"), x.lead.get("explanation_en"), x.notes]))
    ET.SubElement(summary, "CreatedDate").text = x.at.isoformat(timespec="seconds")
    ET.indent(chart)
    return ET.tostring(chart, encoding="utf-8", xml_declaration=True)


# ------------------------------------------------------------------------------------------------ PDF
def casefile_pdf(x: ChartExport, evidence_rows: Sequence[dict[str, Any]] = (), max_rows: int = 60) -> bytes:
    """A referral PDF: title, lead id, date, user; the chart drawn from the saved positions with a legend; the
    explanations and features; the evidence table; the investigator's notes and annotations."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, Rect, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    zh = x.lang == "zh"
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=12)
    small = ParagraphStyle("s", parent=body, fontSize=7.5, leading=9.5)
    head = ParagraphStyle("h", parent=body, fontSize=15, leading=19, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=body, fontSize=11, leading=14, spaceBefore=6, spaceAfter=3)

    def esc(s: Any) -> str:
        return str(s if s is not None else "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    page = landscape(A4)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=page, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=10 * mm,
                            bottomMargin=10 * mm, title=x.title, author=x.user,
                            subject=f"fraudnet referral {x.lead.get('lead_id')}")
    lead = x.lead
    story: list[Any] = [
        Paragraph(esc(x.title), head),
        Paragraph(esc(("线索编号 " if zh else "Lead ") + str(lead.get("lead_id")) + " · " +
                      ("类型 " if zh else "kind ") +
                      x.word(KIND_NAMES.get(str(lead.get("kind")), (str(lead.get("kind")),) * 2)) + " · " +
                      ("等级 " if zh else "severity ") +
                      x.word(SEVERITY_NAMES.get(str(lead.get("severity")), (str(lead.get("severity")),) * 2)) + " · " +
                      (f"涉嫌金额 ¥{lead.get('amount_at_risk') or 0:,.2f}" if zh
                       else f"amount at risk ¥{lead.get('amount_at_risk') or 0:,.2f}")), body),
        Paragraph(esc((f"制作人 {x.user} · 日期 {x.at:%Y-%m-%d %H:%M}" if zh else
                       f"Prepared by {x.user} · {x.at:%Y-%m-%d %H:%M}") +
                      (f" · 案卷 {x.casefile_id} v{x.version}" if x.casefile_id and zh else
                       f" · case file {x.casefile_id} v{x.version}" if x.casefile_id else "")), body),
        Spacer(1, 3 * mm),
    ]
    # The chart, scaled into the page width and the height left on page 1.
    width, height = page[0] - 24 * mm, page[1] - 70 * mm
    pos = _pos(x)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 30.0
    scale = min((width - 2 * pad) / max(1.0, x1 - x0), (height - 2 * pad) / max(1.0, y1 - y0), 1.5)
    draw = Drawing(width, height)
    # Centred in the space it has (a tall chart used to hug the left margin).
    off_x = (width - (x1 - x0) * scale) / 2
    off_y = (height - (y1 - y0) * scale) / 2

    def at(nid: str) -> tuple[float, float]:
        px, py = pos[nid]
        return off_x + (px - x0) * scale, height - off_y - (py - y0) * scale  # screen y grows downwards

    for e in x.chart.edges:
        if e.source in pos and e.target in pos:
            (ax, ay), (bx, by) = at(e.source), at(e.target)
            draw.add(Line(ax, ay, bx, by, strokeColor=colors.HexColor(_EDGE_COLORS.get(e.type, "#9aa5b1")),
                          strokeOpacity=0.8, strokeWidth=min(3.0, 0.4 + math.log10(1 + (e.amount or 0) / 1000))))
    radius = max(2.5, min(7.0, 6.0 * scale))
    label_all = len(x.chart.nodes) <= 120
    drawn = [n for n in x.chart.nodes if n.id in pos]
    # The lead's members ringed in red, as on screen.
    members = {f"{t}:{k}" for t, field_ in (("Person", "persons"), ("Practitioner", "practitioners"),
                                            ("Institution", "institutions"), ("Pharmacy", "institutions"))
               for k in (lead.get(field_) or [])}
    for n in drawn:
        cx, cy = at(n.id)
        member = n.id in members
        draw.add(Circle(cx, cy, radius, fillColor=colors.HexColor(_COLORS.get(n.type, "#555555")),
                        strokeColor=colors.HexColor("#cf1322") if member else colors.white,
                        strokeWidth=1.2 if member else 0.5))
    # Labels last, each on a white box: the links used to run through them.
    size = 6.0
    for n in drawn:
        if label_all or n.type not in ("Person", "Visit"):
            cx, cy = at(n.id)
            text = _node_text(n, x.lang)
            if len(text) > PDF_LABEL_CHARS:  # cut with a mark (an occasion's "15人入院" was cut to "15")
                text = text[:PDF_LABEL_CHARS - 1] + "…"
            w = pdfmetrics.stringWidth(text, font, size)
            draw.add(Rect(cx - w / 2 - 1, cy - radius - size - 2.2, w + 2, size + 2, fillColor=colors.white,
                          strokeColor=None, fillOpacity=0.85))
            draw.add(String(cx, cy - radius - size, text, fontName=font, fontSize=size, textAnchor="middle"))
    story.append(draw)
    legend = [[Paragraph("<font color='{}'>●</font> {}".format(_COLORS.get(t, "#555555"),
                                                           esc(x.word(TYPE_NAMES.get(t, (t, t))))), small)
               for t in sorted({n.type for n in x.chart.nodes})]]
    links = sorted({e.type for e in x.chart.edges if e.source in pos and e.target in pos})
    legend.append([Paragraph("<font color='{}'>━</font> {}".format(_EDGE_COLORS.get(t, "#9aa5b1"),
                                                              esc(x.word(EDGE_NAMES.get(t, (t, t))))), small)
                   for t in links])
    width_ = max(len(r) for r in legend)
    legend = [r + [""] * (width_ - len(r)) for r in legend]
    story += [Paragraph(esc("图例" if zh else "Legend"), small), Table(legend, hAlign="LEFT"), PageBreak()]
    story += [Paragraph(esc("线索说明" if zh else "Explanation"), h2),
              Paragraph(esc(lead.get("explanation_zh")), body), Spacer(1, 2 * mm),
              Paragraph(esc(lead.get("explanation_en")), body)]
    if x.notes:
        story += [Paragraph(esc("办案笔记" if zh else "Investigator's notes"), h2), Paragraph(esc(x.notes), body)]
    notes = [(n.label or n.key, x.node_notes[n.id]) for n in x.chart.nodes if n.id in x.node_notes]
    notes += [(_edge_text(e, x.lang), x.edge_notes[e.id]) for e in x.chart.edges if e.id in x.edge_notes]
    if notes:
        story += [Paragraph(esc("图上批注" if zh else "Annotations"), h2),
                  Table([[Paragraph(esc(a), small), Paragraph(esc(b), small)] for a, b in notes],
                        colWidths=[80 * mm, None], hAlign="LEFT")]
    cols = [("mdtrt_id", "就诊ID", "Visit id"), ("begntime", "开始", "Start"), ("endtime", "结束", "End"),
            ("med_type", "类别", "Type"), ("psn_no", "人员", "Person"), ("fixmedins_code", "机构", "Institution"),
            ("atddr_no", "医师", "Practitioner"), ("dise_name", "诊断", "Diagnosis"),
            ("fund_pay_sumamt", "基金支付", "Fund paid")]
    rows = [[Paragraph(esc(c[1] if zh else c[2]), small) for c in cols]]
    for r in list(evidence_rows)[:max_rows]:
        rows.append([Paragraph(esc(str(r.get(c[0]) if r.get(c[0]) is not None else "")[:40]), small) for c in cols])
    story += [Paragraph(esc((f"证据就诊记录（{len(evidence_rows)} 条" if zh else
                             f"Evidence visits ({len(evidence_rows)}") +
                            (f"，列出前 {max_rows} 条）" if zh and len(evidence_rows) > max_rows else
                             f", first {max_rows} listed)" if len(evidence_rows) > max_rows else
                             "）" if zh else ")")), h2)]
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c0c6cc")),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f4")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
