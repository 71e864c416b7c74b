"""The referral PDF as it looks: page 1 rendered (pypdfium2) shows the chart — nodes in their colours, centred, with
its labels — not a blank page or a chart cut off at the margin."""

from __future__ import annotations

from datetime import datetime

import pypdfium2 as pdfium  # a dev dependency (pip install -e .[dev]); missing, the test fails

from fraudnet.exports.casefile import ChartExport, casefile_pdf
from fraudnet.graph.model import Edge, Node, Subgraph

PERSON_BLUE = (0x1F, 0x6F, 0xD1)
INSTITUTION_RED = (0x9B, 0x2C, 0x2C)


def _export(n_persons: int = 12) -> ChartExport:
    persons = [Node(f"Person:P{i}", "Person", f"P{i}", f"张三{i}") for i in range(n_persons)]
    inst = Node("Institution:H1", "Institution", "H1", "上海长海老年病医院")
    edges = [Edge(f"E{i}", "VISITED", p.id, inst.id, visits=3, amount=5000.0 * (i + 1)) for i, p in enumerate(persons)]
    # A wide, flat layout: persons in one row, the institution below the middle.
    pos = {p.id: (i * 100.0, 0.0) for i, p in enumerate(persons)} | {inst.id: (550.0, 300.0)}
    lead = {"lead_id": "L0123456789ABCDEF012", "kind": "collusion_ring", "severity": "red", "amount_at_risk": 1e5,
            "explanation_zh": "12名参保人同日入院", "explanation_en": "12 persons admitted together"}
    return ChartExport(lead=lead, chart=Subgraph(nodes=[*persons, inst], edges=edges), positions=pos, user="inv1",
                       at=datetime(2026, 12, 4, 22, 0), title="团伙 L0123456789ABCDEF012")


def _page1(pdf: bytes):  # noqa: ANN202 - a PIL image
    doc = pdfium.PdfDocument(pdf)
    assert len(doc) >= 2  # chart page, then explanation and evidence
    return doc[0].render(scale=1.5).to_pil().convert("RGB")


def _near(px: tuple[int, int, int], rgb: tuple[int, int, int], tol: int = 30) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, rgb, strict=True))


def test_page_one_shows_the_chart_centred_with_nodes_in_their_colours() -> None:
    img = _page1(casefile_pdf(_export()))
    w, h = img.size
    px = img.load()
    # The chart region: below the header, above the legend.
    region = [(x, y) for y in range(int(h * 0.18), int(h * 0.78), 2) for x in range(0, w, 2)]
    ink = [p for p in region if sum(px[p]) < 3 * 235]
    assert len(ink) / len(region) > 0.01, "the chart region is blank"
    blue = [p for p in region if _near(px[p], PERSON_BLUE)]
    red = [p for p in region if _near(px[p], INSTITUTION_RED)]
    assert len(blue) > 100 and len(red) > 10, (len(blue), len(red))
    # Nothing cut: the 12 persons span the width, left and right of the middle alike (centred, inside the page).
    xs = [x for x, _ in blue]
    assert min(xs) > 0.03 * w and max(xs) < 0.97 * w
    left, right = min(xs) - 0, w - max(xs)
    assert abs(left - right) < 0.1 * w, (left, right)
    # The header says the kind and severity in words: the PDF's text has them.
    text = pdfium.PdfDocument(casefile_pdf(_export()))[0].get_textpage().get_text_range()
    assert "合谋团伙" in text and "红色预警" in text and "collusion_ring" not in text


def test_a_tall_chart_is_centred_not_hugging_the_left_margin() -> None:
    x = _export(4)
    x.positions = {f"Person:P{i}": (0.0, i * 400.0) for i in range(4)} | {"Institution:H1": (0.0, 1600.0)}
    img = _page1(casefile_pdf(x))
    w, h = img.size
    px = img.load()
    blue = [(x_, y) for y in range(int(h * 0.15), int(h * 0.85), 2) for x_ in range(0, w, 2)
            if _near(px[(x_, y)], PERSON_BLUE)]
    assert blue
    mid = sum(x_ for x_, _ in blue) / len(blue)
    assert abs(mid - w / 2) < 0.08 * w, (mid, w)
