"""The independent synthetic city (bench/cities/indep.py): tables ingest cleanly, truth is consistent and complete."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cities.indep import generate, id_check_digit
from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main

KINDS = {
    "collusion_ring", "card_skimming", "drug_resale", "rule:split_admission", "rule:bed_hanging",
    "rule:impersonation", "rule:gender_age_mismatch", "rule:after_death", "rule:overlapping_stays",
    "rule:over_quantity", "rule:over_standard_price", "rule:duplicate_charge", "rule:discharge_growth",
}
TABLES = ("psn_info", "medins_info", "prac_info", "mdtrt", "setl", "fee_list", "hilist", "phar_inv")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("indep") / "city"
    summary = generate(4000, 11, out)
    return out, summary


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_iso7064_check_digit_known_value() -> None:
    # GB 11643 worked example: 11010519491231002 -> X
    digits = np.array([[int(c) for c in "11010519491231002"]])
    assert id_check_digit(digits)[0] == "X"


def test_tables_written_and_deterministic(city: tuple[Path, dict], tmp_path: Path) -> None:
    out, summary = city
    for t in TABLES:
        assert (out / f"{t}.csv").stat().st_size > 0, t
    assert 6.5 <= summary["visits_per_person_year"] <= 11
    assert 2.5 <= summary["lines_per_visit"] <= 5
    again = tmp_path / "again"
    generate(4000, 11, again)
    for t in ("mdtrt", "fee_list", "psn_info"):
        assert (out / f"{t}.csv").read_bytes() == (again / f"{t}.csv").read_bytes(), t
    assert (out / "truth.json").read_text(encoding="utf-8") == (again / "truth.json").read_text(encoding="utf-8")


def test_truth_complete_and_consistent(city: tuple[Path, dict]) -> None:
    out, _ = city
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert truth["generator"] == "indep" and truth["persons"] == 4000 and truth["seed"] == 11
    kinds = {}
    for s in truth["schemes"]:
        kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
        assert s["evidence"], s["scheme_id"]
    assert set(kinds) == KINDS and min(kinds.values()) >= 3
    visits = {r["mdtrt_id"]: r for r in _rows(out / "mdtrt.csv")}
    persons = {r["psn_no"]: r for r in _rows(out / "psn_info.csv")}
    insts = {r["fixmedins_code"] for r in _rows(out / "medins_info.csv")}
    pracs = {r["prac_psn_code"]: r for r in _rows(out / "prac_info.csv")}
    for s in truth["schemes"]:
        assert all(visits[e]["vali_flag"] == "1" for e in s["evidence"])
        assert set(s["persons"]) <= set(persons) and set(s["institutions"]) <= insts
        assert set(s["practitioners"]) <= set(pracs)
    for lk in truth["lookalikes"]:
        assert lk["lead_kinds"] and (lk["persons"] or lk["institutions"])
        assert set(lk["persons"]) <= set(persons) and set(lk["institutions"]) <= insts
    # spot checks of what was planted
    for s in truth["schemes"]:
        ev = [visits[e] for e in s["evidence"]]
        if s["kind"] == "rule:after_death":
            dd = persons[s["persons"][0]]["death_date"]
            assert dd and all(v["begntime"][:10] > dd for v in ev)
        if s["kind"] == "rule:gender_age_mismatch":
            for v in ev:
                sex = persons[v["psn_no"]]["gend"]
                assert (sex == "1" and v["dise_codg"].startswith("O8")) or (sex == "2" and v["dise_codg"] == "N40.x00")
        if s["kind"] == "collusion_ring":
            assert {v["atddr_no"] for v in ev} <= set(s["practitioners"])
            assert {v["med_type"] for v in ev} <= {"21"}
    # no background visit after a death date
    planted = {e for s in truth["schemes"] for e in s["evidence"]}
    for v in visits.values():
        dd = persons[v["psn_no"]]["death_date"]
        if dd and v["mdtrt_id"] not in planted:
            assert v["begntime"][:10] <= dd, v
    # doctors D + 12 digits, pharmacists their own prefix
    for code, r in pracs.items():
        assert (code[0] == "D" if r["prac_psn_type"] == "1" else code[0] == "Y") and len(code) == 13
        assert code[1:].isdigit()


def test_certno_check_digits_valid(city: tuple[Path, dict]) -> None:
    out, _ = city
    certs = [r["certno"] for r in _rows(out / "psn_info.csv")]
    assert len(set(certs)) == len(certs)
    digits = np.array([[int(c) for c in x[:17]] for x in certs])
    assert (id_check_digit(digits) == np.array([x[17] for x in certs])).all()
    assert all(len(x) == 18 for x in certs)


def test_ingests_without_quarantine(city: tuple[Path, dict], tmp_path: Path) -> None:
    out, summary = city
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["-w", str(ws), "ingest", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with ClaimsStore.open(ws, read_only=True) as store:
        counts = store.table_counts()
        assert counts["mdtrt"] == summary["visits"]
        assert counts["fee_list"] == summary["fee_lines"]
        assert counts["psn_info"] == 4000
        rejected = store.sql("SELECT count(*) AS n FROM quarantine")["n"][0]
    assert rejected == 0
