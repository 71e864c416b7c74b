"""Communities of big chart answers (fraudnet/viz/communities.py): partitions you can see, heads, determinism."""

from __future__ import annotations

import random

from fraudnet.graph.model import Edge
from fraudnet.viz.communities import BIG_CHART, annotate_communities, chart_communities


def _cliques(k: int, size: int) -> tuple[list[str], list[dict]]:
    """`k` cliques of `size` persons, clique i joined to clique i+1 by one link."""
    ids = [f"Person:{c}-{i}" for c in range(k) for i in range(size)]
    edges = [{"source": f"Person:{c}-{i}", "target": f"Person:{c}-{j}", "visits": 2, "amount": 100.0}
             for c in range(k) for i in range(size) for j in range(i + 1, size)]
    edges += [{"source": f"Person:{c}-0", "target": f"Person:{c + 1}-1", "visits": 0, "amount": 0.0}
              for c in range(k - 1)]
    return ids, edges


def test_cliques_are_the_communities_and_heads_carry_the_money() -> None:
    ids, edges = _cliques(3, 5)
    edges.append({"source": "Person:2-3", "target": "Person:2-4", "visits": 1, "amount": 50_000.0})
    membership, heads = chart_communities(ids, edges)
    groups: dict[int, set[str]] = {}
    for nid, c in zip(ids, membership, strict=True):
        groups.setdefault(c, set()).add(nid)
    assert sorted(map(sorted, groups.values())) == [[f"Person:{c}-{i}" for i in range(5)] for c in range(3)]
    c2 = membership[ids.index("Person:2-3")]
    assert heads[c2] in ("Person:2-3", "Person:2-4")  # the 50,000 link's ends have the most money


def test_same_answer_same_partition_whatever_the_global_random_state() -> None:
    rng = random.Random(5)
    ids = [f"Person:{i}" for i in range(300)]
    edges = [Edge(id=f"E{k}", type="VISITED", source=f"Person:{rng.randrange(300)}",
                  target=f"Person:{rng.randrange(300)}", visits=rng.randrange(4), amount=rng.random() * 900)
             for k in range(1200)]
    random.seed(1)
    first = chart_communities(ids, edges)
    random.seed(999)
    assert chart_communities(ids, edges) == first
    assert random.random() == random.Random(999).random()  # the global generator was left where it was
    sizes = [first[0].count(c) for c in range(max(first[0]) + 1)]
    assert sizes == sorted(sizes, reverse=True)  # numbered by size, 0 the largest


def test_annotate_only_above_threshold_and_never_changes_shared_props() -> None:
    ids, edges = _cliques(BIG_CHART // 10 + 1, 10)
    shared: dict = {"x": 1}
    out = {"nodes": [{"id": i, "type": "Person", "label": i, "props": shared} for i in ids], "edges": edges}
    annotate_communities(out)
    assert shared == {"x": 1}
    c = {n["id"]: n["props"]["community"] for n in out["nodes"]}
    assert all(c[f"Person:{k}-0"] == c[f"Person:{k}-9"] != c[f"Person:{k + 1}-0"] for k in range(40))
    n0 = out["nodes"][0]["props"]
    assert n0["community_size"] == 10 and n0["community_head"].startswith("Person:0-") and n0["x"] == 1
    small = {"nodes": out["nodes"][:BIG_CHART], "edges": edges}
    small["nodes"] = [{**n, "props": {"x": 1}} for n in small["nodes"]]
    assert all("community" not in n["props"] for n in annotate_communities(small)["nodes"])


def test_heads_prefer_people_and_places_over_visits() -> None:
    ids = ["Visit:1", "Person:a", "Institution:H"]
    edges = [{"source": "Visit:1", "target": "Person:a", "amount": 9e6, "visits": 1},
             {"source": "Visit:1", "target": "Institution:H", "amount": 9e6, "visits": 1}]
    types = {"Visit:1": "Visit", "Person:a": "Person", "Institution:H": "Institution"}
    _, heads = chart_communities(ids, edges, types)
    assert heads[0] in ("Person:a", "Institution:H")
