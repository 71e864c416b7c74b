"""The referral PDF's chart reads like the screen: links coloured by relationship and named in the legend, time
nodes labelled in words, long labels cut with a mark, the lead's members ringed in red."""

from __future__ import annotations

from datetime import datetime

import pypdfium2 as pdfium

from fraudnet.exports.casefile import PDF_LABEL_CHARS, ChartExport, casefile_pdf
from fraudnet.graph.model import Edge, Node, Subgraph

ADMITTED_AT = (0x9B, 0x2C, 0x2C)
TREATED_BY = (0x5F, 0xB9, 0x8F)
MEMBER_RING = (0xCF, 0x13, 0x22)


def _ring() -> ChartExport:
    persons = [Node(f"Person:P{i}", "Person", f"P{i}", f"张三{i}") for i in range(4)]
    occ = Node("Occasion:H1|2025-01-05", "Occasion", "H1|2025-01-05", "2025-01-05 · 4",
               props={"date": "2025-01-05", "persons": 4})
    doc = Node("Practitioner:D1", "Practitioner", "D1", "李医生")
    inst = Node("Institution:H1", "Institution", "H1", "上海市某某区某某街道社区卫生服务中心第二分中心住院部")
    edges = [Edge(f"A{i}", "ADMITTED_IN", p.id, occ.id, visits=1) for i, p in enumerate(persons)]
    edges += [Edge("AT", "ADMITTED_AT", occ.id, inst.id, visits=4, amount=40000.0),
              Edge("TB", "TREATED_BY", occ.id, doc.id, visits=4, amount=40000.0)]
    pos = {p.id: (i * 200.0, 0.0) for i, p in enumerate(persons)}
    pos |= {occ.id: (300.0, 200.0), doc.id: (0.0, 400.0), inst.id: (600.0, 400.0)}
    lead = {"lead_id": "L0123456789ABCDEF012", "kind": "collusion_ring", "severity": "red", "amount_at_risk": 4e4,
            "persons": ["P0", "P1", "P2", "P3"], "institutions": ["H1"], "practitioners": ["D1"],
            "explanation_zh": "4名参保人同日入院", "explanation_en": "4 persons admitted together"}
    return ChartExport(lead=lead, chart=Subgraph(nodes=[*persons, occ, doc, inst], edges=edges), positions=pos,
                       user="inv1", at=datetime(2026, 12, 5, 8, 0), title="团伙 L0123456789ABCDEF012")


def _count(img, rgb: tuple[int, int, int], tol: int = 24) -> int:  # noqa: ANN001 - a PIL image
    """Pixels of `rgb`, drawn opaque or at the links' 80 % over white."""
    faded = tuple(round(0.8 * c + 0.2 * 255) for c in rgb)
    px = img.load()
    w, h = img.size
    return sum(1 for y in range(0, h, 2) for x in range(0, w, 2)
               if any(all(abs(a - b) <= tol for a, b in zip(px[x, y][:3], want, strict=True))
                      for want in (rgb, faded)))


def test_links_in_their_relationship_colours_named_in_the_legend() -> None:
    doc = pdfium.PdfDocument(casefile_pdf(_ring()))
    img = doc[0].render(scale=1.5).to_pil().convert("RGB")
    assert _count(img, TREATED_BY) > 50  # the doctor's link in green, not grey
    assert _count(img, MEMBER_RING) > 10  # members ringed
    text = doc[0].get_textpage().get_text_range()
    assert "入院机构" in text and "诊治" in text  # relationships named in the legend
    assert "2025-01-05 · 4人入院" in text  # the occasion in words, not "2025-01-05 · 4"
    long = "上海市某某区某某街道社区卫生服务中心第二分中心住院部"
    assert long not in text and long[:PDF_LABEL_CHARS - 1] + "…" in text


def test_english_time_nodes() -> None:
    x = _ring()
    x.lang = "en"
    text = pdfium.PdfDocument(casefile_pdf(x))[0].get_textpage().get_text_range()
    assert "2025-01-05 · 4 admitted" in text
