"""Case files and chart exports under hostile input: forged ids, oversized states, XML-breaking annotations,
someone else's file, a viewer saving, person numbers in exports for viewers."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import networkx as nx
import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace

EVIL_NOTE = '</Description><ChartItem Label="x"/>]]><!-- & "\' <script>alert(1)</script>'


@pytest.fixture
def client(api_handbuilt: ApiWorkspace):
    with TestClient(create_app(Settings(workspace=api_handbuilt.path))) as c:
        yield c


def _state(nodes: list[dict] | None = None, **extra: object) -> dict:
    return {"nodes": nodes if nodes is not None else [
        {"id": "Person:P01", "x": 0, "y": 0, "note": EVIL_NOTE},
        {"id": "Institution:H001", "x": 100, "y": 50, "pinned": True}], "notes": EVIL_NOTE, **extra}


def _create(client: TestClient, ws: ApiWorkspace, role: str = "investigator", **body: object) -> object:
    payload = {"lead_id": ws.lead_id, "title": "case", "state": _state(), **body}
    return client.post("/api/casefiles", json=payload, headers=ws.headers(role))


@pytest.mark.parametrize(("body", "field"), [
    ({"state": _state([{"id": "no-colon", "x": 0, "y": 0}])}, "id"),
    ({"state": _state([{"id": "Person:P01\x00", "x": 0, "y": 0}])}, "id"),
    ({"state": _state([{"id": "Person:P01", "x": 1e300, "y": 0}])}, "x"),
    ({"state": _state([{"id": f"Person:P{i}", "x": 0, "y": 0} for i in range(6001)])}, "nodes"),
    ({"state": _state(notes="n" * 20001)}, "notes"),
    ({"state": _state(extra_field=1)}, "extra_field"),
    ({"title": ""}, "title"),
    ({"lead_id": "../../etc/passwd"}, "lead_id"),
])
def test_bad_case_file_input_is_refused_naming_the_field(client: TestClient, api_handbuilt: ApiWorkspace,
                                                        body: dict, field: str) -> None:
    r = _create(client, api_handbuilt, **body)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_forged_ids_and_other_peoples_files(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    ws = api_handbuilt
    assert client.get("/api/casefiles/CF'; DROP TABLE x", headers=ws.headers("admin")).status_code in (404, 422)
    assert client.get("/api/casefiles/CF0000000000000000", headers=ws.headers("admin")).status_code == 404
    r = _create(client, ws)
    assert r.status_code == 201, r.text
    cid = r.json()["casefile_id"]
    # Another user's unshared file answers like a missing one; a viewer may not save even when shared.
    assert client.get(f"/api/casefiles/{cid}", headers=ws.headers("viewer")).status_code == 404
    assert client.post(f"/api/casefiles/{cid}/share", json={"users": ["viewer1"]},
                       headers=ws.headers("viewer")).status_code == 404
    assert client.post(f"/api/casefiles/{cid}/share", json={"users": ["viewer1\n"]},
                       headers=ws.headers("investigator")).status_code == 422
    assert client.post(f"/api/casefiles/{cid}/share", json={"users": ["viewer1"]},
                       headers=ws.headers("investigator")).status_code == 200
    assert client.get(f"/api/casefiles/{cid}", headers=ws.headers("viewer")).status_code == 200
    assert client.post(f"/api/casefiles/{cid}/versions", json={"state": _state()},
                       headers=ws.headers("viewer")).status_code == 403
    assert _create(client, ws, role="viewer").status_code == 403
    assert client.get(f"/api/casefiles/{cid}?version=99", headers=ws.headers("admin")).status_code == 400
    assert client.get(f"/api/casefiles/{cid}/export?format=exe", headers=ws.headers("admin")).status_code == 422


def test_annotations_cannot_break_the_exported_xml_and_viewers_get_no_person_numbers(
        client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    ws = api_handbuilt
    cid = _create(client, ws).json()["casefile_id"]
    client.post(f"/api/casefiles/{cid}/share", json={"users": ["viewer1"]}, headers=ws.headers("investigator"))
    for role in ("investigator", "viewer"):
        anx = client.get(f"/api/casefiles/{cid}/export?format=anx", headers=ws.headers(role))
        root = ET.fromstring(anx.content)  # well-formed despite the note
        notes = [i.get("Description") for i in root.iter("ChartItem") if i.get("Description")]
        assert EVIL_NOTE in notes
        assert len(root.findall("ChartItemCollection/ChartItem[@Label='x']")) == 0
        gm = client.get(f"/api/casefiles/{cid}/export?format=graphml", headers=ws.headers(role))
        g = nx.read_graphml(io.BytesIO(gm.content))
        if role == "viewer":
            assert b"P01" not in anx.content and b"P01" not in gm.content
            assert "张三" not in anx.content.decode() and all(not n.startswith("Person:P") for n in g.nodes)
        else:
            assert "Person:P01" in g.nodes
    pdf = client.get(f"/api/casefiles/{cid}/export?format=pdf", headers=ws.headers("viewer"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
