"""Ingest of the small generated city: every valid row lands, nothing is rejected, the planted evidence exists."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder


def _valid_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return sum(1 for r in reader if r.get("vali_flag", "1") != "0")


def test_small_city_ingests_cleanly(small_city_dir: Path, small_claims: ClaimsStore) -> None:
    counts = small_claims.table_counts()
    for name, n in counts.items():
        path = small_city_dir / f"{name}.csv"
        if path.exists():
            assert n == _valid_rows(path), name
    assert counts["mdtrt"] > 1000 and counts["fee_list"] > counts["mdtrt"]
    assert small_claims.sql("SELECT count(*) AS n FROM quarantine")["n"][0] == 0
    vf = small_claims.sql("SELECT count(*) AS n, count(DISTINCT mdtrt_id) AS d, "
                          "count(*) FILTER (WHERE fixmedins_type IS NULL) AS no_inst FROM visit_fact")
    assert vf["n"][0] == counts["mdtrt"] == vf["d"][0] and vf["no_inst"][0] == 0
    # Every visit named as evidence of a planted scheme is in the store.
    truth = json.loads((small_city_dir / "truth.json").read_text(encoding="utf-8"))
    records = truth if isinstance(truth, list) else truth.get("schemes", truth.get("records", []))
    evidence = sorted({e for r in records for e in r.get("evidence", [])})
    assert evidence
    found = small_claims.sql(
        "SELECT count(*) AS n FROM (SELECT unnest($ids) AS id) e WHERE id IN (SELECT mdtrt_id FROM mdtrt) "
        "OR id IN (SELECT setl_id FROM setl)", {"ids": evidence})["n"][0]
    assert found == len(evidence)
    start, end = small_claims.data_period()
    assert start is not None and end is not None and start < end
    # No raw phone number or ID number was stored: hashes are 64 hex characters, masks contain '*'.
    psn = small_claims.sql("SELECT certno_hash, certno_masked, mob_hash, mob_masked FROM psn_info LIMIT 50")
    assert psn["certno_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert psn["certno_masked"].str.contains(r"\*").all()
    assert psn["mob_masked"].dropna().str.contains(r"\*").all()


def test_small_city_reingest_is_a_no_op(small_city_dir: Path, tmp_path: Path) -> None:
    with ClaimsStore.open(tmp_path) as store:
        first = ingest_folder(small_city_dir, store)
        counts = store.table_counts()
        second = ingest_folder(small_city_dir, store)
        assert first.ok and second.ok
        assert len(second.already_ingested) == len(first.files)
        assert store.table_counts() == counts
