"""Browser tests of the evidence-first link chart: recipes per scheme, masking, case files, keyboard, axe-core,
the big-lead budget; headless Chromium against a real `fraudnet serve` on the generated city."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest

from bench.linkchart import TARGET_MS, big_chart, measure_open
from tests.fixtures.browser import VIEWPORT
from tests.test_browser_linkchart import (
    ARTIFACTS,
    api_get,
    chart_ids,
    login,
    open_lead,
    select_node,
    top_lead,
    visible_ids,
    wait_ready,
)

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent.parent / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def _lead(server: Any, kind: str) -> dict[str, Any]:
    return api_get(server, f"/api/leads/{top_lead(server, kind=kind)['lead_id']}")


def _types(page: Any) -> dict[str, int]:
    return page.evaluate("""() => { const c = {}; window.__fraudnet.cy.nodes().forEach(n => {
        const t = n.data('type'); c[t] = (c[t] || 0) + 1; }); return c; }""")


def _no_overlap(page: Any) -> None:
    assert page.evaluate("window.__fraudnet.chart.overlaps()") == 0, "a node is drawn under another"


# ---- recipes ----------------------------------------------------------------------------------------------------

def test_ring_recipe_shows_shared_phone_occasions_and_doctor(live_server: Any, page_factory: Any) -> None:
    lead = _lead(live_server, "collusion_ring")
    page = page_factory()
    login(page, live_server, "investigator")
    open_lead(page, lead["lead_id"])
    types = _types(page)
    f = lead["features"]
    # One occasion node per co-admission window, each linked to the institution; every member admitted in one.
    assert types.get("Occasion") == len(f["occasion_dates"])
    members = [f"Person:{p}" for p in lead["persons"]]
    admitted = set(page.evaluate("window.__fraudnet.cy.edges('[type = \"ADMITTED_IN\"]').map(e => e.source().id())"))
    assert set(members) <= admitted
    # "9 members share one phone": the Phone node is there, linked to that many members.
    if f.get("shared_phone_members"):
        phones = page.evaluate("""() => window.__fraudnet.cy.nodes('[type = "Phone"]').map(n =>
            n.connectedEdges('[type = "USES_PHONE"]').length)""")
        assert phones and max(phones) == f["shared_phone_members"]
    # The key doctor is on the chart, not under the hospital; no node hides another.
    assert any(f"Practitioner:{d}" in chart_ids(page) for d in lead["practitioners"])
    _no_overlap(page)
    # Summarised links: "15 stays, 2025-01-05…01-07, ¥58,541" (zh: 15次住院，…), with their visit list.
    labels = page.evaluate("window.__fraudnet.cy.edges('[type = \"ADMITTED_AT\"]').map(e => e.data('elabel'))")
    assert labels and all(re.search(r"\d+次住院，\d{4}-\d\d-\d\d.*¥[\d,]+", x) for x in labels)
    edge = page.evaluate("window.__fraudnet.cy.edges('[type = \"ADMITTED_AT\"]').map(e => e.id())[0]")
    page.evaluate("id => { window.__fraudnet.cy.getElementById(id).emit('tap'); }", edge)
    page.wait_for_selector("#edge-visits tbody tr")
    assert page.inner_text(".edge-type") == "入院机构"  # relationship named in words
    n_rows = page.eval_on_selector_all("#edge-visits tbody tr", "rs => rs.length")
    assert n_rows == page.evaluate("id => window.__fraudnet.cy.getElementById(id).data('visits')", edge)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "recipe_ring.png"))


def test_skimming_recipe_shows_operators_and_bursts(live_server: Any, page_factory: Any) -> None:
    lead = _lead(live_server, "card_skimming")
    page = page_factory()
    login(page, live_server, "investigator")
    open_lead(page, lead["lead_id"])
    types = _types(page)
    assert types.get("Operator") == len(lead["features"]["operators"])
    assert types.get("Burst", 0) >= 1
    # Each burst hangs off its operator; every card (person) of the lead was swiped in a burst.
    assert page.evaluate("""() => window.__fraudnet.cy.nodes('[type = "Burst"]').every(b =>
        b.connectedEdges('[type = "SWIPED"]').length === 1)""")
    cards = set(page.evaluate("window.__fraudnet.cy.edges('[type = \"CARD_IN\"]').map(e => e.source().id())"))
    assert {f"Person:{p}" for p in lead["persons"]} <= cards
    operators = page.evaluate("window.__fraudnet.cy.nodes('[type = \"Operator\"]').map(n => n.data('label'))")
    assert all(x.startswith("经办人 ") for x in operators)
    _no_overlap(page)
    page.screenshot(path=str(ARTIFACTS / "recipe_skimming.png"))


def test_resale_recipe_shows_drug_quantities_and_shared_contacts(live_server: Any, page_factory: Any) -> None:
    lead = _lead(live_server, "drug_resale")
    page = page_factory()
    login(page, live_server, "investigator")
    open_lead(page, lead["lead_id"])
    assert page.eval_on_selector("#layout-select", "s => s.value") == "layered"
    drugs = page.evaluate("""() => window.__fraudnet.cy.nodes('[type = "Drug"]').map(n =>
        [n.data('key'), n.data('props').quantity, n.data('props').days_of_supply, n.data('label')])""")
    assert drugs and {d[0] for d in drugs} <= set(lead["features"]["drugs"])
    assert all(q > 0 and "单位" in label for _, q, _, label in drugs)
    obtained = page.evaluate("window.__fraudnet.cy.edges('[type = \"OBTAINED\"]').map(e => e.data('props').quantity)")
    assert obtained and sum(obtained) == pytest.approx(sum(d[1] for d in drugs))
    # The shared phone/address the explanation speaks of is drawn, linking at least two persons.
    shared = page.evaluate("""() => window.__fraudnet.cy.nodes('[type = "Phone"], [type = "Address"]').map(n =>
        n.neighborhood('node[type = "Person"]').length)""")
    assert shared and max(shared) >= 2
    leader = lead["features"].get("leader")
    if leader and f"Person:{leader}" in chart_ids(page):
        assert page.evaluate(f"window.__fraudnet.cy.getElementById('Person:{leader}').data('props').role") == "leader"
    # Opens readable: labels drawn (zoom high enough for the 10 px labels), no visit tiles.
    assert page.evaluate("window.__fraudnet.cy.zoom()") >= 0.7
    assert "Visit" not in _types(page)
    _no_overlap(page)


def test_expansion_links_new_nodes_to_everything_on_the_chart(live_server: Any, page_factory: Any) -> None:
    lead = _lead(live_server, "drug_resale")
    page = page_factory()
    login(page, live_server, "investigator")
    open_lead(page, lead["lead_id"])
    # A pharmacy of the chain: its other customers come in, linked to the phones, addresses, doctors on the chart.
    pharmacy = page.evaluate("window.__fraudnet.cy.nodes('[type = \"Pharmacy\"]').map(n => n.id())[0]")
    before = chart_ids(page)
    select_node(page, pharmacy)
    page.click("[data-action=expand]")
    page.wait_for_function(f"window.__fraudnet.cy.nodes().length > {len(before)}")
    page.wait_for_timeout(300)
    added = chart_ids(page) - before
    # Every relationship among the entities now on the chart is drawn, as the API gives it.
    ents = [n for n in chart_ids(page) if n.split(":")[0] in ("Person", "Practitioner", "Institution", "Pharmacy",
                                                               "Phone", "Address", "Drug")]
    truth = httpx.post(live_server.base_url + "/api/graph/subgraph", json={"node_ids": ents, "include_visits": False},
                       headers=live_server.headers("investigator"), timeout=60).json()
    want = {e["id"] for e in truth["edges"] if e["source"] in added or e["target"] in added}
    assert want and want <= chart_ids(page, "edge")
    _no_overlap(page)
    # A reload keeps the expansion (and the positions) in this tab.
    where = page.evaluate("id => window.__fraudnet.cy.getElementById(id).position()", sorted(added)[0])
    page.reload()
    page.wait_for_selector(f".lead-view[data-lead-id='{lead['lead_id']}'][data-ready='true']")
    wait_ready(page)
    assert added <= chart_ids(page)
    again = page.evaluate("id => window.__fraudnet.cy.getElementById(id).position()", sorted(added)[0])
    assert again == pytest.approx(where, abs=0.1)  # positions are kept to 0.1 px


# ---- masking and readability ------------------------------------------------------------------------------------

def test_viewer_never_sees_person_numbers(live_server: Any, page_factory: Any, ring_lead: dict) -> None:
    page = page_factory()
    login(page, live_server, "viewer")
    open_lead(page, ring_lead["lead_id"])
    person = f"Person:{ring_lead['persons'][0]}"
    select_node(page, person)
    page.wait_for_selector("#entity-panel [data-field=gend]")
    text = page.inner_text("body")
    for p in ring_lead["persons"]:
        assert p not in text, "a full person number is on the viewer's screen"
    # Decoded fields in words: 性别 女/男 (code), 险种 in words.
    panel = page.inner_text("#entity-panel")
    assert re.search(r"性别\s+[男女] \([12]\)", panel)
    assert re.search(r"险种\s+\S+医疗保险 \(\d{3}\)", panel)
    # GraphML for a viewer comes from the server, with opaque person ids and masked numbers.
    with page.expect_download() as info:
        page.select_option("#export-select", "graphml")
    data = Path(info.value.path()).read_bytes()
    assert not any(p.encode() in data for p in ring_lead["persons"])
    g = nx.read_graphml(io.BytesIO(data))
    assert all(n.startswith("Person:~") for n, d in g.nodes(data=True) if d.get("type") == "Person")


def test_deep_link_survives_a_new_tab_and_login(live_server: Any, browser: Any, ring_lead: dict) -> None:
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(f"{live_server.base_url}/#/lead/{ring_lead['lead_id']}")
        page.wait_for_selector("#login-form")
        page.fill("#token", live_server.tokens["investigator"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector(f".lead-view[data-lead-id='{ring_lead['lead_id']}'][data-ready='true']")
        # Queue rows carry real links.
        page.goto(f"{live_server.base_url}/#/queue")
        page.wait_for_selector("#lead-table")
        hrefs = page.eval_on_selector_all("tr.lead-row a.lead-link", "as => as.map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("#/lead/") for h in hrefs)
    finally:
        ctx.close()


# ---- case files -------------------------------------------------------------------------------------------------

def _anx_checked(data: bytes, node_ids: set[str]) -> ET.Element:
    """Parse an .anx back and check the i2 structure: Chart → ChartItemCollection → ChartItem → End → Entity → Icon
    → IconStyle for entities, ChartItem → Link(End1Id, End2Id) → LinkStyle for links between them."""
    root = ET.fromstring(data)
    assert root.tag == "Chart"
    items = root.find("ChartItemCollection")
    assert items is not None
    entities, links = {}, []
    for item in items.findall("ChartItem"):
        end, link = item.find("End"), item.find("Link")
        assert (end is None) != (link is None), "a ChartItem is either an entity end or a link"
        if end is not None:
            ent = end.find("Entity")
            assert ent is not None and ent.find("Icon/IconStyle") is not None
            assert item.get("XPosition") is not None and end.get("Y") is not None
            entities[ent.get("EntityId")] = item.get("Label")
        else:
            assert link.find("LinkStyle") is not None
            links.append((link.get("End1Id"), link.get("End2Id")))
    assert set(entities) == node_ids
    assert links and all(a in entities and b in entities for a, b in links)
    assert {t.get("Name") for t in root.findall("EntityTypeCollection/EntityType")} == {
        i.split(":")[0] for i in node_ids}
    return root


def test_case_file_saved_reopened_shared_exported_and_audited(live_server: Any, browser: Any,
                                                             ring_lead: dict) -> None:
    lid = ring_lead["lead_id"]
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True)
    try:
        page = ctx.new_page()
        login(page, live_server, "investigator")
        open_lead(page, lid)
        doctor = f"Practitioner:{ring_lead['practitioners'][0]}"
        select_node(page, doctor)
        page.fill("#annotation-text", "主诊医师 key doctor")
        page.click("#annotation-save")
        page.click("[data-action=pin]")
        page.evaluate("id => { const n = window.__fraudnet.cy.getElementById(id); n.unlock(); "
                      "n.position({x: 1234, y: -321}); n.lock(); }", doctor)
        page.fill("#case-notes", "夜查 night check")
        page.click("#case-save")
        page.wait_for_function("location.hash.includes('case=CF')")
        link = page.evaluate("location.hash")
        cid = re.search(r"case=(CF[0-9A-F]{16})", link).group(1)
        page.click("#case-save")  # a second version
        page.wait_for_function("document.querySelector('#case-meta').dataset.version === '2'")
    finally:
        ctx.close()

    # A new browser context (new tab, no session): the link asks for login, then reopens the file as saved.
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(f"{live_server.base_url}/{link}")
        page.wait_for_selector("#login-form")
        page.fill("#token", live_server.tokens["investigator"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector(f".lead-view[data-lead-id='{lid}'][data-ready='true']", timeout=60_000)
        wait_ready(page)
        assert page.evaluate("id => window.__fraudnet.cy.getElementById(id).position()", doctor) == {"x": 1234,
                                                                                                      "y": -321}
        assert page.evaluate("id => window.__fraudnet.cy.getElementById(id).locked()", doctor)
        assert page.evaluate("id => window.__fraudnet.cy.getElementById(id).data('note')", doctor) == \
            "主诊医师 key doctor"
        assert page.input_value("#case-notes") == "夜查 night check"
        assert "case-share-users" in page.content()
        page.fill("#case-share-users", "viewer1")
        page.click("#case-share")
        page.wait_for_function("document.querySelector('#case-share-users') !== null")
        page.wait_for_timeout(500)
    finally:
        ctx.close()
    shared = api_get(live_server, f"/api/casefiles/{cid}", role="investigator")
    assert shared["shared_with"] == ["viewer1"] and shared["latest_version"] == 2

    # The colleague (a viewer) opens it with their own masking; the exports are masked for them too.
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(f"{live_server.base_url}/{link}")
        page.wait_for_selector("#login-form")
        page.fill("#token", live_server.tokens["viewer"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector(f".lead-view[data-lead-id='{lid}'][data-ready='true']", timeout=60_000)
        assert page.evaluate("id => window.__fraudnet.cy.getElementById(id).position()", doctor) == {"x": 1234,
                                                                                                      "y": -321}
        assert not any(p in page.inner_text("body") for p in ring_lead["persons"])
        assert page.query_selector("#case-save") is None
    finally:
        ctx.close()
    h = live_server.headers("viewer")
    anx = httpx.get(f"{live_server.base_url}/api/casefiles/{cid}/export", params={"format": "anx"}, headers=h,
                    timeout=120)
    assert anx.status_code == 200 and not any(p.encode() in anx.content for p in ring_lead["persons"])
    state_ids = {n["id"] for n in shared["state"]["nodes"] if not n["hidden"]}
    root = ET.fromstring(anx.content)
    exported = {e.get("EntityId") for e in root.iter("Entity")}
    assert len(exported) == len(state_ids)
    _anx_checked(anx.content, exported)
    assert any(item.get("Description") == "主诊医师 key doctor" for item in root.iter("ChartItem"))
    pdf = httpx.get(f"{live_server.base_url}/api/casefiles/{cid}/export", params={"format": "pdf"}, headers=h,
                    timeout=120)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and len(pdf.content) > 5000
    gm = httpx.get(f"{live_server.base_url}/api/casefiles/{cid}/export", params={"format": "graphml"},
                   headers=live_server.headers("investigator"), timeout=120)
    g = nx.read_graphml(io.BytesIO(gm.content))
    assert g.nodes[doctor]["annotation"] == "主诊医师 key doctor" and g.nodes[doctor]["x"] == 1234
    # Saving, reopening, sharing and exporting are in the audit log.
    audit = api_get(live_server, "/api/audit", entity=f"CaseFile:{cid}", limit=100)
    actions = {e["action"] for e in audit["items"]}
    assert {"casefile.create", "casefile.save", "casefile.read", "casefile.share", "casefile.export"} <= actions


# ---- keyboard, screen readers, axe-core -------------------------------------------------------------------------

def _axe(page: Any) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: npm ci in frontend/ (scripts/setup.sh does it)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_keyboard_and_axe(live_server: Any, page_factory: Any, ring_lead: dict) -> None:
    page = page_factory()
    login(page, live_server, "investigator")
    bad = _axe(page)
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in bad]
    open_lead(page, ring_lead["lead_id"])
    assert page.get_attribute("#cy", "tabindex") == "0" and page.get_attribute("#cy", "aria-label")
    page.focus("#cy")
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("window.__fraudnet.cy.nodes('.kbd-focus').map(n => n.id())")
    assert len(focused) == 1
    page.wait_for_function("document.querySelector('#chart-live').textContent.length > 0")
    page.keyboard.press("ArrowDown")
    moved = page.evaluate("window.__fraudnet.cy.nodes('.kbd-focus').map(n => n.id())")
    assert len(moved) == 1 and moved != focused
    page.keyboard.press("Enter")
    page.wait_for_selector(f".entity-label[data-node-id='{moved[0]}']")
    z = page.evaluate("window.__fraudnet.cy.zoom()")
    page.focus("#cy")
    page.keyboard.press("+")
    assert page.evaluate("window.__fraudnet.cy.zoom()") > z
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert page.evaluate("window.__fraudnet.cy.zoom()") < z
    bad = _axe(page)
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in bad]


def test_timeline_brush_filters_the_chart(live_server: Any, page_factory: Any, ring_lead: dict) -> None:
    page = page_factory()
    login(page, live_server, "investigator")
    open_lead(page, ring_lead["lead_id"])
    bars = page.eval_on_selector_all(".tl-bar", "bs => bs.reduce((a, b) => a + Number(b.dataset.count), 0)")
    assert bars == len(ring_lead["evidence"])  # every evidence visit counted once
    occasions = chart_ids(page, "node[type = 'Occasion']")
    box = page.locator("#timeline-svg").bounding_box()
    # Brush the first tenth of the period: later occasions and their links disappear.
    page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    page.wait_for_function("window.__fraudnet.cy.nodes('.gone').length > 0")
    shown = visible_ids(page) & occasions
    assert shown and shown < occasions
    assert float(page.get_attribute("#timeline-brush", "width")) > 10
    page.click("#time-reset")
    assert occasions <= visible_ids(page)


# ---- big lead ---------------------------------------------------------------------------------------------------

def test_big_lead_opens_within_budget(live_server: Any, page_factory: Any) -> None:
    headers = live_server.headers("investigator")
    lead_id, body = big_chart(live_server.base_url, headers, nodes=3800)
    assert len(body["nodes"]) > 1500  # the small city gives fewer than the 3,800 asked for; still a big chart
    page = page_factory()
    login(page, live_server, "investigator")
    fig = measure_open(page, live_server.base_url, lead_id, body)
    print(f"big lead: {fig}")
    assert fig["interactive_ms"] < TARGET_MS, fig
    assert fig["held"] > 0 and fig["shown"] <= 600 and fig["overlaps"] == 0
    # Grouped by the communities the server found: every drawn node sits in its community's frame (inside the
    # frame's box; frames do not overlap), labelled by the community's head, and the groups' members are linked
    # more inside than across (counted on all the links of the answer between drawn nodes, drawn or held back).
    assert fig["group_by"] == "community" and fig["groups"] >= 3, fig
    drawn = page.evaluate("""() => { const o = {}; window.__fraudnet.cy.nodes().filter(n =>
        !['More', 'Group'].includes(n.data('type'))).forEach(n => {
        o[n.id()] = n.data('group') ? 'Group:' + n.data('group') : null; }); return o; }""")
    community = {n["id"]: n["props"]["community"] for n in body["nodes"]}
    assert all(g == f"Group:c{community[nid]}" for nid, g in drawn.items()), "a node outside its community's group"
    boxes = page.evaluate("""() => { const o = {}; window.__fraudnet.cy.nodes('[type = "Group"]').forEach(f => {
        const p = f.position(); o[f.id()] = [p.x - f.data('w') / 2, p.y - f.data('h') / 2, p.x + f.data('w') / 2,
        p.y + f.data('h') / 2]; }); return o; }""")
    where = page.evaluate("""() => { const o = {}; window.__fraudnet.cy.nodes().forEach(n => {
        o[n.id()] = [n.position().x, n.position().y]; }); return o; }""")
    assert all(boxes[g][0] < where[nid][0] < boxes[g][2] and boxes[g][1] < where[nid][1] < boxes[g][3]
               for nid, g in drawn.items()), "a node drawn outside its group's frame"
    frames = list(boxes.values())
    assert not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                   for i, a in enumerate(frames) for b in frames[i + 1:]), "two group frames overlap"
    inside = sum(1 for e in body["edges"] if e["source"] in drawn and e["target"] in drawn
                 and drawn[e["source"]] == drawn[e["target"]])
    across = sum(1 for e in body["edges"] if e["source"] in drawn and e["target"] in drawn
                 and drawn[e["source"]] != drawn[e["target"]])
    sizes: dict[str, int] = {}
    for g in drawn.values():
        sizes[g] = sizes.get(g, 0) + 1
    pairs_in = sum(k * (k - 1) / 2 for k in sizes.values())
    pairs_all = len(drawn) * (len(drawn) - 1) / 2
    # Drawn nodes are the top of each community, hubs included (a hospital links many groups): per pair of drawn
    # nodes, links inside a group are several times as dense as links across; over the whole answer most links
    # are inside.
    assert inside / pairs_in > 3 * across / (pairs_all - pairs_in), (inside, across, sizes)
    whole_in = sum(1 for e in body["edges"] if community[e["source"]] == community[e["target"]])
    assert whole_in > len(body["edges"]) - whole_in, (whole_in, len(body["edges"]))
    heads = page.evaluate("""() => window.__fraudnet.cy.nodes('[type = "Group"]')
        .map(g => [g.id(), g.data('label')])""")
    labels = {n["id"]: n["label"] for n in body["nodes"]}
    head_of = {f"Group:c{n['props']['community']}": n["props"]["community_head"] for n in body["nodes"]}
    for gid, label in heads:
        assert labels[head_of[gid]] in label, (gid, label)
    # A "N more" handle brings in the next 150 of its group, in its group, still with no node under another.
    handle = page.evaluate("window.__fraudnet.cy.nodes('[type = \"More\"]').map(n => n.id())[0]")
    held = page.evaluate("window.__fraudnet.chart.heldCount()")
    before = len(chart_ids(page))
    page.evaluate("id => { window.__fraudnet.cy.getElementById(id).emit('tap'); }", handle)
    page.wait_for_function(f"window.__fraudnet.cy.nodes().length > {before}")
    added = len(chart_ids(page)) - before
    assert 0 < added <= 150 and page.evaluate("window.__fraudnet.chart.heldCount()") == held - added
    assert page.evaluate("window.__fraudnet.chart.overlaps()") == 0
    group = handle.split(":", 1)[1]
    assert page.evaluate(f"""() => window.__fraudnet.cy.nodes().filter(n => n.data('group') === '{group}')
        .filter(n => n.data('type') !== 'More').every(n => n.data('props').community === {int(group[1:])})""")
