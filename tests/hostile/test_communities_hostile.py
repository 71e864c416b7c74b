"""Hostile input for big-chart communities: unknown and self links, duplicate ids, a huge answer, a lead that does
not exist."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.config import Settings
from fraudnet.viz.communities import annotate_communities, chart_communities
from tests.fixtures.server import ApiWorkspace


def test_links_to_unknown_nodes_self_links_and_missing_fields_are_ignored() -> None:
    ids = ["Person:a", "Person:b", "Person:c"]
    edges = [{"source": "Person:a", "target": "Person:b"}, {"source": "Person:a", "target": "Person:a"},
             {"source": "Person:zz", "target": "Person:c"}, {"source": None, "target": None},
             {"source": "Person:b", "target": "Person:c", "visits": None, "amount": None}]
    membership, heads = chart_communities(ids, edges)
    assert len(membership) == 3 and set(heads) == set(membership)
    assert all(h in ids for h in heads.values())


def test_no_links_at_all_gives_one_community_per_node() -> None:
    ids = [f"Person:{i}" for i in range(500)]
    out = annotate_communities({"nodes": [{"id": i, "type": "Person", "props": None} for i in ids], "edges": []})
    assert sorted(n["props"]["community"] for n in out["nodes"]) == list(range(500))
    assert all(n["props"]["community_head"] == n["id"] for n in out["nodes"])


def test_huge_answer_is_partitioned_quickly_and_in_little_memory() -> None:
    n = 200_000
    ids = [f"Visit:{i}" for i in range(n)]
    edges = [{"source": ids[i], "target": ids[(i * 7919 + 13) % n], "visits": 1, "amount": 10.0}
             for i in range(n)] + [{"source": ids[i], "target": ids[i + 1]} for i in range(n - 1)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    membership, heads = chart_communities(ids, edges)
    took = time.perf_counter() - t
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(membership) == n and len(heads) == max(membership) + 1
    assert took < 30, took  # 2 shared cores under load; ~2 s alone
    assert grew_mb < 800, grew_mb


@pytest.fixture
def client(api_handbuilt: ApiWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=api_handbuilt.path))) as c:
        yield c


@pytest.mark.parametrize("lead_id", ["L0000000000000000000", "LFFFFFFFFFFFFFFFFFFF"])
def test_chart_of_a_lead_that_does_not_exist_is_404_with_no_communities(client: TestClient,
                                                                      api_handbuilt: ApiWorkspace,
                                                                      lead_id: str) -> None:
    r = client.get(f"/api/charts/lead/{lead_id}", headers=api_handbuilt.headers("investigator"))
    assert r.status_code == 404, r.text
    assert "community" not in r.text


def test_malformed_lead_id_is_rejected_before_any_work(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    r = client.get("/api/charts/lead/L'%20OR%201=1", headers=api_handbuilt.headers("investigator"))
    assert r.status_code in (404, 422), r.text
