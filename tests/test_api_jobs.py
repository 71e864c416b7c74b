"""Jobs through the real app: ingest uploads (good, failing, malformed), detection runs, progress and results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.claims.audit import ensure_tables
from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace, make_tokens
from tests.graph_handbuilt import write_csvs


@pytest.fixture
def empty_ws(tmp_path: Path) -> ApiWorkspace:
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        ensure_tables(store.con)
        tokens = make_tokens(store.con)
    return ApiWorkspace(ws, tokens)


@pytest.fixture
def client(empty_ws: ApiWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=empty_ws.path))) as c:
        yield c


def _wait(client: TestClient, ws: ApiWorkspace, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    seen_progress = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=ws.headers("viewer")).json()
        seen_progress.append(job["progress"])
        if job["state"] in ("succeeded", "failed"):
            assert seen_progress == sorted(seen_progress)  # progress never goes back
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _files(folder: Path, names: list[str] | None = None) -> list[tuple[str, tuple[str, bytes, str]]]:
    paths = sorted(folder.iterdir())
    return [("files", (p.name, p.read_bytes(), "text/csv")) for p in paths if names is None or p.name in names]


def _counts(client: TestClient, ws: ApiWorkspace) -> dict[str, int]:
    # table counts through the API's own store: the search for every person key
    return {"persons": len(client.get("/api/search?q=P&limit=200", headers=ws.headers("admin")).json()["items"])}


def test_ingest_upload_then_detect(client: TestClient, empty_ws: ApiWorkspace, tmp_path: Path) -> None:
    folder = write_csvs(tmp_path / "input")
    admin = empty_ws.headers("admin")
    assert client.get("/api/entities/Person:P01", headers=admin).status_code == 404
    assert client.post("/api/jobs/ingest", files=_files(folder), headers=empty_ws.headers("investigator")
                       ).status_code == 403
    r = client.post("/api/jobs/ingest", files=_files(folder), headers=admin)
    assert r.status_code == 202, r.text
    job = _wait(client, empty_ws, r.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert job["kind"] == "ingest" and job["progress"] == 1.0 and job["user"] == "admin1"
    assert job["result"]["ok"] is True and job["result"]["tables"]["mdtrt"]["rows_loaded"] == 10
    assert not any((empty_ws.path / "uploads").glob("*/*"))  # raw uploads (certno, mob) are not kept
    # the graph store now answers from the new data
    prof = client.get("/api/entities/Person:P01", headers=admin).json()
    assert prof["profile"]["stats"]["visits"] == 3
    # re-uploading the same files changes nothing
    again = _wait(client, empty_ws, client.post("/api/jobs/ingest", files=_files(folder), headers=admin
                                                ).json()["job_id"])
    assert again["state"] == "succeeded" and again["result"]["rows_loaded"] == 0
    assert len(again["result"]["already_ingested"]) == len(list(folder.iterdir()))

    assert client.post("/api/jobs/detect", json={"only": ["nonsense"]},
                       headers=empty_ws.headers("investigator")).json()["field"] == "only"
    assert client.post("/api/jobs/detect", json={}, headers=empty_ws.headers("viewer")).status_code == 403
    r = client.post("/api/jobs/detect", json={"only": ["rule"]}, headers=empty_ws.headers("investigator"))
    assert r.status_code == 202
    det = _wait(client, empty_ws, r.json()["job_id"])
    assert det["state"] == "succeeded", det
    assert all(k.startswith("rule:") for k in det["result"]["kinds"])
    assert det["result"]["leads"] == sum(det["result"]["by_kind"].values())
    listed = client.get("/api/jobs", headers=empty_ws.headers("viewer")).json()["items"]
    assert [j["kind"] for j in listed] == ["detect", "ingest", "ingest"]
    audit = client.get("/api/audit?action=job", headers=admin).json()["items"]
    assert [a["action"] for a in audit] == ["job.detect", "job.ingest", "job.ingest"]


def test_failed_ingest_reports_why_and_changes_nothing(client: TestClient, empty_ws: ApiWorkspace,
                                                       tmp_path: Path) -> None:
    folder = write_csvs(tmp_path / "input")
    mdtrt = folder / "mdtrt.csv"
    lines = mdtrt.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    drop = header.index("begntime")
    mdtrt.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines)
                     + "\n", encoding="utf-8")
    r = client.post("/api/jobs/ingest", files=_files(folder), headers=empty_ws.headers("admin"))
    job = _wait(client, empty_ws, r.json()["job_id"])
    assert job["state"] == "failed"
    assert "begntime" in job["error"] and "mdtrt.csv" in job["error"]
    assert job["result"] is None
    assert _counts(client, empty_ws) == {"persons": 0}  # nothing was loaded (all-or-nothing pre-flight)
    assert client.get("/api/entities/Person:P01", headers=empty_ws.headers("admin")).status_code == 404


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("notes.txt", b"a,b\n1,2\n", "notes.txt"),
    ("mdtrt.pdf", b"%PDF", "mdtrt.pdf"),
    ("mdtrt.csv", b"", "empty"),
    ("setl.csv", b"   \n", "empty"),
])
def test_bad_uploads_are_refused_with_the_file_named(client: TestClient, empty_ws: ApiWorkspace, name: str,
                                                      content: bytes, needle: str) -> None:
    r = client.post("/api/jobs/ingest", files=[("files", (name, content, "text/csv"))],
                    headers=empty_ws.headers("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "files" and needle in r.json()["message"]
    assert client.get("/api/jobs", headers=empty_ws.headers("admin")).json()["items"] == []
    assert not any((empty_ws.path / "uploads").glob("*/*"))


def test_upload_without_files_and_duplicates(client: TestClient, empty_ws: ApiWorkspace) -> None:
    admin = empty_ws.headers("admin")
    assert client.post("/api/jobs/ingest", headers=admin).status_code == 422
    dup = [("files", ("mdtrt.csv", b"mdtrt_id\n1\n", "text/csv")), ("files", ("MDTRT.csv", b"mdtrt_id\n1\n",
                                                                              "text/csv"))]
    r = client.post("/api/jobs/ingest", files=dup, headers=admin)
    assert r.status_code == 400 and "twice" in r.json()["message"]
