"""Graph worker processes: ego answers from forked workers equal the server's own, follow risk changes, and
the server answers by itself when workers are lost. Plus the renderer the workers use, byte for byte."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.api.ego import forking_available
from fraudnet.api.ego.render import EgoRenderer
from fraudnet.api.present import render_subgraph
from fraudnet.api.principal import Principal, person_ids
from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings, load_settings
from fraudnet.errors import ConfigError
from fraudnet.graph.embedded_store import EmbeddedStore
from tests.fixtures.server import ApiWorkspace, copy_workspace

needs_fork = pytest.mark.skipif(not forking_available(), reason="graph workers need fork (Linux)")


def _centres(con: object, limit: int) -> list[str]:
    rows = con.execute("SELECT DISTINCT psn_no FROM visit_fact ORDER BY psn_no LIMIT ?", [limit]).fetchall()
    return [f"Person:{r[0]}" for r in rows]


def test_renderer_writes_the_bytes_of_the_plain_path(small_claims: ClaimsStore) -> None:
    store = EmbeddedStore(small_claims)
    centres = _centres(small_claims.con, 40)
    # Some persons and institutions at risk, the rest at 0.0; Phone/Address/Drug have no risk (null).
    risk = {("Person", c.split(":", 1)[1]): {"score": 0.25 + i / 100} for i, c in enumerate(centres[::3])}
    renderer = EgoRenderer(store)
    for role in ("investigator", "viewer", "investigator"):  # the second investigator pass answers from kept JSON
        principal = Principal(user="u", role=role, token_id="t")
        for centre in centres:
            for depth, cap in ((1, 500), (2, 300), (3, 60)):
                out, body = render_subgraph(store.ego_network(centre, depth=depth, max_nodes=cap), principal, risk)
                got = renderer.render(principal, risk, node_id=centre, depth=depth, max_nodes=cap)
                assert got[0] == body, (role, centre, depth)
                assert got[1] == person_ids(n["id"] for n in out["nodes"])
                assert got[2:] == (len(out["nodes"]), out["truncated"])
    # A new risk table (as a worker receives after a case change) is written in, not the kept one.
    changed = {key: {"score": 0.9} for key in risk}
    principal = Principal(user="u", role="investigator", token_id="t")
    for centre in centres[:10]:
        _, body = render_subgraph(store.ego_network(centre, depth=2, max_nodes=300), principal, changed)
        assert renderer.render(principal, changed, node_id=centre, depth=2, max_nodes=300)[0] == body
    # Masking really differs between the roles, so the two kept variants are not one.
    inv = renderer.render(Principal("u", "investigator", "t"), risk, node_id=centres[0], depth=1)[0]
    view = renderer.render(Principal("u", "viewer", "t"), risk, node_id=centres[0], depth=1)[0]
    assert inv != view
    store.close()


def test_renderer_limit_drops_kept_json_and_stays_right(small_claims: ClaimsStore) -> None:
    store = EmbeddedStore(small_claims)
    renderer = EgoRenderer(store, limit=10)
    principal = Principal("u", "investigator", "t")
    seen: set[str] = set()
    for centre in _centres(small_claims.con, 10):
        sub = store.ego_network(centre, depth=2, max_nodes=100)
        seen.update(n.id for n in sub.nodes)
        assert renderer.render(principal, {}, node_id=centre, depth=2, max_nodes=100)[0] == render_subgraph(
            sub, principal, {})[1]
    assert len(seen) > 100  # without the limit more than one answer's nodes would be kept
    assert renderer._nodes[True].count <= 100  # one answer's nodes at most: the rest was forgotten
    store.close()


def test_graph_workers_setting_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("FRAUDNET_GRAPH_WORKERS", "two")
    with pytest.raises(ConfigError, match="FRAUDNET_GRAPH_WORKERS"):
        load_settings(tmp_path)
    monkeypatch.setenv("FRAUDNET_GRAPH_WORKERS", "3")
    assert load_settings(tmp_path).graph_workers == 3


@pytest.fixture
def worker_city(api_city_template: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[TestClient, ApiWorkspace]]:
    ws = ApiWorkspace(copy_workspace(api_city_template.path, tmp_path_factory.mktemp("city-workers") / "ws"),
                      dict(api_city_template.tokens))
    with TestClient(create_app(Settings(workspace=ws.path, graph_workers=2))) as client:
        yield client, ws


def _expected(client: TestClient, centre: str, role: str, **params: object) -> bytes:
    """The ego body the server process itself writes (no worker)."""
    services = client.app.state.services
    sub = services.graph.store.ego_network(centre, **params)
    return render_subgraph(sub, Principal(user=f"{role}1", role=role, token_id="t"), services.leads.risk.table())[1]


@needs_fork
def test_workers_answer_like_the_server_and_follow_risk_changes(worker_city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = worker_city
    ctx = client.app.state.services
    assert client.get("/api/health").json()["graph_workers"] == 2
    worker_pids = ctx.ego.workers.pids()
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    ring = client.get("/api/leads?kind=collusion_ring&page_size=1",
                      headers=ws.headers("investigator")).json()["items"][0]  # viewers see person numbers masked
    centres = [f"Person:{p}" for p in ring["persons"][:3]]
    for role in ("investigator", "viewer"):
        for centre in centres:
            r = client.get(f"/api/graph/ego/{centre}?depth=2&max_nodes=300", headers=ws.headers(role))
            assert r.status_code == 200
            assert r.content == _expected(client, centre, role, depth=2, max_nodes=300)
    # Audited as before: the read names the centre and every person in the answer.
    ctx.audit.flush()
    rows = ctx.claims.con.execute("SELECT entities FROM audit_log WHERE action = 'graph.ego' ORDER BY seq DESC LIMIT 1")
    entities = json.loads(rows.fetchone()[0])  # a JSON array of node ids
    answer = client.get(f"/api/graph/ego/{centres[-1]}?depth=2&max_nodes=300", headers=ws.headers("viewer")).json()
    assert entities[0] == centres[-1]
    assert set(entities) == {centres[-1]} | {n["id"] for n in answer["nodes"] if n["type"] == "Person"}

    # Dismissing the ring changes its members' risk; every worker must answer with the new scores.
    centre = centres[0]
    before = client.get(f"/api/graph/ego/{centre}?depth=1", headers=ws.headers("investigator")).json()
    inv = ws.headers("investigator")
    for status in ("reviewing", "dismissed"):
        assert client.post(f"/api/leads/{ring['lead_id']}/status", json={"status": status, "comment": "核查"},
                           headers=inv).status_code == 200
    for _ in range(40):  # until both workers had a task since the change (who takes a task is not fixed)
        r = client.get(f"/api/graph/ego/{centre}?depth=1", headers=inv)
        assert r.content == _expected(client, centre, "investigator", depth=1)
        if all(w.risk_version == ctx.leads.version for w in ctx.ego.workers._all):
            break
    assert all(w.risk_version == ctx.leads.version for w in ctx.ego.workers._all)
    after = r.json()
    assert [n["risk"] for n in after["nodes"]] != [n["risk"] for n in before["nodes"]]

    # Errors of the query come back as the server's own.
    assert client.get("/api/graph/ego/Person:NOBODY?depth=2", headers=inv).status_code == 404
    # A time window needs the claims store: answered by the server process.
    r = client.get(f"/api/graph/ego/{centre}?depth=2&since=2020-01-01T00:00:00", headers=inv)
    assert r.status_code == 200 and r.json()["nodes"][0]["id"] == centre


@needs_fork
def test_server_answers_itself_when_workers_are_lost(worker_city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = worker_city
    ctx = client.app.state.services
    inv = ws.headers("investigator")
    centre = _centres(ctx.claims.con, 1)[0]
    want = _expected(client, centre, "investigator", depth=2, max_nodes=200)
    first, second = ctx.ego.workers.pids()
    os.kill(first, signal.SIGKILL)
    for _ in range(6):
        r = client.get(f"/api/graph/ego/{centre}?depth=2&max_nodes=200", headers=inv)
        assert r.status_code == 200 and r.content == want
    assert client.get("/api/health").json()["graph_workers"] == 1
    os.kill(second, signal.SIGKILL)
    for _ in range(3):
        r = client.get(f"/api/graph/ego/{centre}?depth=2&max_nodes=200", headers=inv)
        assert r.status_code == 200 and r.content == want
    assert client.get("/api/health").json()["graph_workers"] == 0


@needs_fork
def test_workers_stop_with_the_server(api_city_template: ApiWorkspace, tmp_path: object) -> None:
    ws_path = copy_workspace(api_city_template.path, tmp_path / "ws")
    with TestClient(create_app(Settings(workspace=ws_path, graph_workers=2))) as client:
        pids = client.app.state.services.ego.workers.pids()
        assert all(_alive(p) for p in pids)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a reaped-late zombie is not alive
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@needs_fork
def test_workers_follow_the_new_graph_after_an_ingest_job(tmp_path: object) -> None:
    from fraudnet.claims.audit import ensure_tables
    from tests.fixtures.server import make_tokens
    from tests.graph_handbuilt import write_csvs
    from tests.test_api_jobs import _files, _wait

    with ClaimsStore.open(tmp_path / "ws") as store:
        ensure_tables(store.con)
        ws = ApiWorkspace(tmp_path / "ws", make_tokens(store.con))
    with TestClient(create_app(Settings(workspace=ws.path, graph_workers=2))) as client:
        ctx = client.app.state.services
        before = ctx.ego.workers.pids()
        inv = ws.headers("investigator")
        assert client.get("/api/graph/ego/Person:P01?depth=2", headers=inv).status_code == 404  # empty graph
        job = client.post("/api/jobs/ingest", files=_files(write_csvs(tmp_path / "input")),
                          headers=ws.headers("admin"))
        assert _wait(client, ws, job.json()["job_id"])["state"] == "succeeded"
        after = ctx.ego.workers.pids()
        assert len(after) == 2 and not set(after) & set(before)  # re-forked over the new graph
        assert not any(_alive(p) for p in before)
        r = client.get("/api/graph/ego/Person:P01?depth=2", headers=inv)
        assert r.status_code == 200 and r.content == _expected(client, "Person:P01", "investigator", depth=2)
        assert len(r.json()["nodes"]) > 1


@needs_fork
def test_answers_larger_than_the_shared_buffer_come_through_the_pipe(
        api_city_template: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies are handed over in the worker's shared buffer when they fit and pickled through the pipe when not;
    either way the bytes are the server's own."""
    from fraudnet.api.ego import workers as graph_workers

    monkeypatch.setattr(graph_workers, "REPLY_BUFFER_BYTES", 20_000)  # small answers fit, 2-hop ones do not
    ws = ApiWorkspace(copy_workspace(api_city_template.path, tmp_path_factory.mktemp("city-buf") / "ws"),
                      dict(api_city_template.tokens))
    with TestClient(create_app(Settings(workspace=ws.path, graph_workers=1))) as client:
        ctx = client.app.state.services
        assert len(ctx.ego.workers._all[0].buffer) == 20_000
        inv = ws.headers("investigator")
        sizes = set()
        for centre in _centres(ctx.claims.con, 12):
            for params in ({"depth": 1, "max_nodes": 5}, {"depth": 2, "max_nodes": 300}):
                r = client.get(f"/api/graph/ego/{centre}", params=params, headers=inv)
                assert r.status_code == 200 and r.content == _expected(client, centre, "investigator", **params)
                sizes.add(len(r.content) <= 20_000)
        assert sizes == {True, False}  # both ways were taken
        assert client.get("/api/health").json()["graph_workers"] == 1
