"""The Spark engine: detector SQL transpiled for Spark, and the same leads as DuckDB on two cities (local mode)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.registry import run_detectors
from fraudnet.engines.dialect import inline_params, to_dialect
from fraudnet.ingest.pipeline import ingest_folder

pytest.importorskip("sqlglot")


# ------------------------------------------------------------------ dialect (no Spark needed)
def test_parameters_are_inlined_as_literals_not_text() -> None:
    query = "SELECT * FROM t WHERE a = $name AND b IN (SELECT unnest($ids)) AND c = ? -- $nope"
    sql = inline_params(query.replace(" AND c = ?", ""), {"name": "x' OR '1'='1", "ids": [1, 2], "nope": 0})
    assert "'x'' OR ''1''=''1'" in sql  # the quote is escaped: one string literal, no injected condition
    assert "[1, 2]" in sql
    assert inline_params("SELECT ? AS a, '?' AS b", [7]) == "SELECT 7 AS a, '?' AS b"
    assert inline_params("SELECT $a", {"a": None}) == "SELECT NULL"


def test_duckdb_idioms_are_rewritten_for_spark() -> None:
    ranged = to_dialect("SELECT a.x, k FROM a, range(-$w, $w + 1) r(k)", {"w": 1})
    assert "EXPLODE(SEQUENCE(-1, 1))" in ranged.upper() and " AS K" in ranged.upper()
    ordered = to_dialect("SELECT list(DISTINCT code ORDER BY code) AS items FROM f GROUP BY g", None)
    assert ordered.upper().startswith("SELECT SORT_ARRAY(COLLECT_LIST(DISTINCT CODE)")
    window = to_dialect("SELECT lead(t, 2) OVER o - t AS d FROM v WINDOW o AS (ORDER BY t)", None)
    assert "(LEAD(t, 2) OVER o) - t" in window
    assert "ISFINITE" not in to_dialect("SELECT isfinite(x) FROM v", None).upper()
    assert "XXHASH64" in to_dialect("SELECT hash(a, b) FROM v", None).upper()
    with pytest.raises(ValueError, match="ORDER BY"):
        to_dialect("SELECT list(a ORDER BY b) FROM v", None)


# ------------------------------------------------------------------ Spark local mode
@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local[2] SparkSession for the module, stopped at its end (no JVM left running)."""
    pytest.importorskip("pyspark")
    from fraudnet.engines.spark import spark_session

    session = spark_session("local[2]", driver_memory="1g", conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def indep_claims_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The independent generator's city (bench/cities/indep.py), 2,000 persons over 6 months, ingested."""
    from bench.cities.indep import generate

    out = tmp_path_factory.mktemp("indep-spark") / "city"
    generate(2000, 5, out, months=6)
    ws = tmp_path_factory.mktemp("indep-spark-ws")
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(out, store).ok
    return ws


def _same(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            out.append(f"{path}: keys {sorted(set(a) ^ set(b))}")
        for key in set(a) & set(b):
            _same(a[key], b[key], f"{path}.{key}", out)
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _same(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float):
        if not (math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))):
            out.append(f"{path}: {a!r} vs {b!r}")
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})")


def _leads_on_both(workspace: Path, spark: Any) -> tuple[Any, Any]:
    from fraudnet.engines.spark import SparkEngine

    store = ClaimsStore.open(workspace, read_only=True)
    try:
        duck = run_detectors(store.con)
        engine = SparkEngine.from_store(store.con, session=spark)
        try:
            on_spark = run_detectors(None, engine=engine)
        finally:
            engine.close()
    finally:
        store.close()
    return duck, on_spark


@pytest.mark.spark
@pytest.mark.parametrize("city", ["generated", "independent"])
def test_spark_finds_the_same_leads_as_duckdb(city: str, spark: Any, request: pytest.FixtureRequest) -> None:
    """Every detector on both engines: the same lead ids, scores to 1e-9, the same evidence, members, amounts,
    periods and features (floats to 1e-9)."""
    fixture = "small_claims_workspace" if city == "generated" else "indep_claims_workspace"
    duck, on_spark = _leads_on_both(request.getfixturevalue(fixture), spark)
    assert not duck.errors and not on_spark.errors, on_spark.errors
    assert len(duck) >= 20  # the cities' planted schemes: a comparison with something in it
    assert on_spark.counts == duck.counts
    a = {lead.lead_id: lead.to_dict() for lead in duck}
    b = {lead.lead_id: lead.to_dict() for lead in on_spark}
    assert set(a) == set(b)
    problems: list[str] = []
    for lead_id in sorted(a):
        _same(a[lead_id], b[lead_id], lead_id, problems)
    assert not problems, problems[:20]
    assert on_spark.abstained == duck.abstained and on_spark.skipped == duck.skipped


@pytest.mark.spark
def test_spark_engine_temp_tables_append_and_drop(spark: Any, tmp_path: Path) -> None:
    """Temp tables on Spark: materialised, appended to by column position, dropped; results typed as DuckDB
    types them (a sum of integers is a float column in both)."""
    from fraudnet.engines.spark import SparkEngine

    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact AS SELECT 'm' || i AS mdtrt_id, i % 3 AS k, "
                "TIMESTAMP '2025-01-01' + INTERVAL (i) HOUR AS begntime FROM range(10) t(i)")
    engine = SparkEngine.from_store(con, session=spark, workdir=tmp_path)
    ctx = ClaimsContext(engine=engine)
    try:
        ctx.temp_table("_t", "SELECT k, count(*) AS n FROM visit_fact GROUP BY ALL")
        ctx.append("_t", ("k", "n"), "SELECT 9, 100")
        got = ctx.sql("SELECT sum(n) AS total, sum(k) AS ks FROM _t")
        want = con.execute("SELECT sum(n) AS total, sum(k) AS ks FROM (SELECT k, count(*) AS n FROM visit_fact "
                           "GROUP BY ALL UNION ALL SELECT 9, 100)").df()
        assert got.to_dict("records") == want.to_dict("records") == [{"total": 110.0, "ks": 12.0}]
        assert list(got.dtypes) == list(want.dtypes)
        assert ctx.temp_tables == {"_t": False}
        ctx.close_run()
        assert not ctx.temp_tables
        with pytest.raises(engine.errors):
            ctx.sql("SELECT * FROM _t")
        assert ctx.as_of.isoformat() == "2025-01-01T09:00:00"
    finally:
        engine.close()
        con.close()


@pytest.mark.spark
@pytest.mark.parametrize("seed", [1, 2])
def test_distributed_connected_components_match_igraph(spark: Any, seed: int) -> None:
    """Label propagation by Spark joins gives igraph's components on random sparse graphs (chains included)."""
    import igraph as ig
    import numpy as np
    import pandas as pd

    from fraudnet.engines.spark_graph import connected_components

    rng = np.random.default_rng(seed)
    n = 300
    a, b = rng.integers(0, n, 260), rng.integers(0, n, 260)
    chain = np.arange(400, 440)  # a long chain: the round count follows its length
    edges = pd.DataFrame({"src": [f"v{x:04d}" for x in [*a, *chain[:-1]]],
                          "dst": [f"v{x:04d}" for x in [*b, *chain[1:]]]})
    got = connected_components(spark.createDataFrame(edges)).toPandas()
    g = ig.Graph.TupleList(edges.itertuples(index=False), directed=False)
    want = {}
    for members in g.connected_components():
        names = [g.vs[i]["name"] for i in members]
        for name in names:
            want[name] = min(names)
    assert dict(zip(got["vertex"], got["component"], strict=True)) == want
    assert got.loc[got["vertex"] == "v0439", "component"].item() == "v0400"


@pytest.mark.spark
def test_per_group_runs_igraph_on_each_group(spark: Any) -> None:
    """applyInPandas: one igraph step per institution on the executors, the same answer as per group locally."""
    import igraph as ig
    import pandas as pd

    from fraudnet.engines.spark_graph import per_group

    pairs = pd.DataFrame({"inst": ["H1"] * 4 + ["H2"] * 2, "a": ["p1", "p2", "p3", "p7", "p1", "p5"],
                          "b": ["p2", "p3", "p1", "p8", "p4", "p6"]})

    def largest(group: pd.DataFrame) -> pd.DataFrame:
        g = ig.Graph.TupleList(group[["a", "b"]].itertuples(index=False), directed=False)
        return pd.DataFrame({"inst": [group["inst"].iloc[0]], "largest": [max(len(c) for c in g.components())]})

    got = per_group(spark.createDataFrame(pairs), ["inst"], largest, "inst string, largest long").toPandas()
    assert dict(zip(got["inst"], got["largest"], strict=True)) == {"H1": 3, "H2": 2}


@pytest.mark.spark
def test_detect_cli_on_spark_saves_the_duckdb_leads(spark: Any, small_claims_workspace: Path, tmp_path: Path) -> None:
    """`fraudnet detect --engine spark`: the leads saved in the claims store are DuckDB's, with the same ids."""
    import shutil

    from click.testing import CliRunner

    from fraudnet.cli import main

    saved = {}
    for engine in ("duckdb", "spark"):
        ws = tmp_path / engine
        shutil.copytree(small_claims_workspace, ws)
        res = CliRunner().invoke(main, ["-w", str(ws), "detect", "--engine", engine, "--only", "rule:duplicate_charge",
                                        "--only", "rule:over_quantity", "--no-sync"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        with ClaimsStore.open(ws, read_only=True) as store:
            saved[engine] = store.con.execute("SELECT lead_id, kind, score, evidence FROM leads WHERE active "
                                              "ORDER BY lead_id").fetchall()
    assert saved["spark"] == saved["duckdb"] and len(saved["duckdb"]) >= 2
    assert spark.sparkContext._jsc is not None  # the CLI did not stop the session it did not start


def test_detect_cli_rejects_spark_options_on_duckdb(small_claims_workspace: Path) -> None:
    from click.testing import CliRunner

    from fraudnet.cli import main

    res = CliRunner().invoke(main, ["-w", str(small_claims_workspace), "detect", "--master", "local[2]"])
    assert res.exit_code == 2 and "--engine spark" in res.output


@pytest.mark.spark
def test_hostile_strings_round_trip_through_spark(spark: Any, tmp_path: Path) -> None:
    """Quotes, backslashes and comment markers in a parameter come back from Spark as the same string."""
    from fraudnet.engines.spark import SparkEngine

    nasty = ["x' OR '1'='1", "a'; DROP TABLE t; --", "\\'", "back\\slash", "/* x */", "回'车", "$p", "?"]
    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact AS SELECT TIMESTAMP '2025-01-01' AS begntime")
    engine = SparkEngine.from_store(con, session=spark, workdir=tmp_path)
    try:
        for value in nasty:
            got = engine.rows("SELECT $v AS v, list_contains($l, $v) AS inside", {"v": value, "l": [value, "z"]})
            assert got == [(value, True)], value
    finally:
        engine.close()
        con.close()


@pytest.mark.spark
def test_ring_peeling_runs_per_institution_on_the_executors(spark: Any, small_claims_workspace: Path) -> None:
    """Tight rings on Spark: the co-admission pairs are grouped by institution and peeled by applyInPandas; the
    driver receives the blocks' members only, never the pair list (the graph's edges)."""
    from fraudnet.detectors.collusion_ring import CollusionRingDetector
    from fraudnet.engines.spark import SparkEngine
    from fraudnet.graph.projection import co_admission_pairs_query

    with ClaimsStore.open(small_claims_workspace, read_only=True) as store:
        n_pairs = len(store.con.execute(*co_admission_pairs_query(1, 2)).fetchall())
        engine = SparkEngine.from_store(store.con, session=spark)
        try:
            leads = CollusionRingDetector().run(ClaimsContext(engine=engine))
        finally:
            engine.close()
    steps = [s for s in engine.steps if s[0] == "per_group"]
    assert len(steps) == 1 and "FlatMapGroupsInPandas" in steps[0][1]
    assert "fixmedins_code" in steps[0][1].split("FlatMapGroupsInPandas", 1)[1].split("\n", 1)[0]
    assert 0 < steps[0][2] < n_pairs  # members of blocks came back, not the pairs
    assert any(ld.kind == "collusion_ring" for ld in leads)


@pytest.mark.spark
def test_components_and_per_group_agree_on_both_engines(spark: Any, tmp_path: Path) -> None:
    """`context.components` / `context.per_group`: igraph and pandas locally on DuckDB, iterative joins and
    applyInPandas on Spark — the same answers (a chain longer than the data's other components included)."""
    import pandas as pd

    from fraudnet.engines.spark import SparkEngine

    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact AS SELECT TIMESTAMP '2025-01-01' AS begntime")
    con.execute("CREATE TABLE e AS SELECT * FROM (VALUES ('a', 'b'), ('b', 'c'), ('x', 'y'), ('c', 'd'), ('q', 'q'), "
                "('k1', 'k2'), ('k2', 'k3'), ('k3', 'k4'), ('k4', 'k5'), ('k5', 'k6'), ('d', NULL)) t(src, dst)")
    engine = SparkEngine.from_store(con, session=spark, workdir=tmp_path)
    engine.register("e", con.execute("SELECT * FROM e").df())
    local, distributed = ClaimsContext(con), ClaimsContext(engine=engine)

    def size(group: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"component": [group["component"].iloc[0]], "n": [len(group)]})

    try:
        want = local.components("SELECT src, dst FROM e")
        got = distributed.components("SELECT src, dst FROM e")
        assert dict(zip(want["vertex"], want["component"], strict=True)) == {
            "a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x", "q": "q",
            **{f"k{i}": "k1" for i in range(1, 7)}}
        assert got.to_dict("records") == want.to_dict("records")
        assert engine.steps[-1][0] == "components" and engine.steps[-1][2] == len(want)
        con.register("labels", want)
        engine.register("labels", got)
        q = "SELECT vertex, component FROM labels"
        sizes = [c.per_group(q, None, ["component"], size, "component string, n long").sort_values("component")
                 for c in (local, distributed)]
        assert sizes[0].to_dict("records") == sizes[1].to_dict("records") == [
            {"component": "a", "n": 4}, {"component": "k1", "n": 6}, {"component": "q", "n": 1},
            {"component": "x", "n": 2}]
    finally:
        engine.close()
        con.close()


@pytest.mark.spark
def test_ingest_to_a_lake_then_detect_on_spark_from_the_lake(spark: Any, small_city_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`fraudnet ingest DIR --lake L` then `fraudnet detect --engine spark --lake L`: Spark reads the lake (the
    store is not exported), and the leads saved are DuckDB's on the same city, with the same ids — a graph
    detector (rings, peeled per institution on the executors) and rules."""
    from click.testing import CliRunner

    import fraudnet.engines.spark as spark_engine
    from fraudnet.cli import main

    lake, only = tmp_path / "lake", ["--only", "collusion_ring", "--only", "rule:duplicate_charge",
                                     "--only", "rule:bed_hanging"]
    saved = {}
    for engine in ("duckdb", "spark"):
        ws = tmp_path / engine
        args = ["-w", str(ws), "ingest", str(small_city_dir)] + (["--lake", str(lake)] if engine == "spark" else [])
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        if engine == "spark":
            assert {p.name for p in lake.iterdir()} >= {"fee_list", "mdtrt", "setl", "visit_fact"}

            def no_export(*_: Any, **__: Any) -> None:
                raise AssertionError("a lake run exported the claims store")

            monkeypatch.setattr(spark_engine, "export_store", no_export)
        extra = ["--engine", "spark", "--lake", str(lake)] if engine == "spark" else []
        res = CliRunner().invoke(main, ["-w", str(ws), "detect", *extra, *only, "--no-sync"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        with ClaimsStore.open(ws, read_only=True) as store:
            saved[engine] = store.con.execute("SELECT lead_id, kind, score, evidence, persons, explanation_en "
                                              "FROM leads WHERE active ORDER BY lead_id").fetchall()
    assert {r[1] for r in saved["duckdb"]} >= {"collusion_ring", "rule:duplicate_charge"}
    assert [r[:2] + r[3:] for r in saved["spark"]] == [r[:2] + r[3:] for r in saved["duckdb"]]
    for a, b in zip(saved["spark"], saved["duckdb"], strict=True):
        assert math.isclose(a[2], b[2], rel_tol=1e-9, abs_tol=1e-9)


HOSTILE_OPTERS = ("O'1; DROP TABLE visit_fact;--", "收费员|二", "\\N")


@pytest.mark.spark
def test_card_skimming_clusters_come_from_the_components_step_on_spark(spark: Any, tmp_path: Path) -> None:
    """Skimming on Spark: a chain of pharmacies joined by shared cards (operator ids with quotes, a pipe, `\\N`)
    is DuckDB's one lead; the co-swipe links stay on Spark and the driver receives the candidate episodes'
    component labels, fewer rows than the skimmed visits the links were made from."""
    from fraudnet.detectors.card_skimming import CardSkimmingDetector
    from fraudnet.engines.spark import SparkEngine
    from tests.test_card_skimming_clusters import assert_chain_lead, chain_city

    city, ids = chain_city(HOSTILE_OPTERS)
    local = city.context()
    duck = CardSkimmingDetector().run(local)
    assert_chain_lead(duck, ids, HOSTILE_OPTERS)
    engine = SparkEngine.from_store(local.con, session=spark, workdir=tmp_path)
    try:
        det = CardSkimmingDetector()
        on_spark = det.run(ClaimsContext(engine=engine))
    finally:
        engine.close()
    assert [ld.to_dict() for ld in on_spark] == [ld.to_dict() for ld in duck]
    steps = [s for s in engine.steps if s[0] == "components"]
    assert len(steps) == 1
    candidates = det.episodes_[det.episodes_["evidence_total"] >= min(det.link_min, det._evidence_floor()
                                                                        - det.component_cap)]
    assert 3 <= steps[0][2] <= len(candidates) < len(ids)


@pytest.mark.spark
@pytest.mark.parametrize("seed", [1, 2])
def test_card_skimming_cluster_members_on_spark_match_the_igraph_step(spark: Any, tmp_path: Path, seed: int) -> None:
    """Random episodes: Spark's SQL links and iterative-join components give the co-swipe graph's clusters, in
    its order, with its card links."""
    from fraudnet.detectors.card_skimming import CardSkimmingDetector
    from fraudnet.engines.spark import SparkEngine
    from tests.test_card_skimming_clusters import clusters_on, random_bursts, reference_clusters

    bursts, cand, basket = random_bursts(seed)
    det = CardSkimmingDetector()
    det._basket_visits_ = basket
    want = reference_clusters(det, bursts, cand)
    assert any(len(eps) > 1 for eps, _ in want)
    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact AS SELECT TIMESTAMP '2025-05-01' AS begntime")
    engine = SparkEngine.from_store(con, session=spark, workdir=tmp_path)
    try:
        engine.register(CardSkimmingDetector._TEMP, bursts)
        assert clusters_on(ClaimsContext(engine=engine), det, cand, basket) == want
    finally:
        engine.close()
        con.close()
