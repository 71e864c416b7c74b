"""The quality harness's city perturbations (bench/perturb.py) on a hand-built city, its figures and targets, and
the evaluation's per-look-alike `lead_kinds`."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.perturb import (
    TIME_OF_DAY_KINDS,
    drop_fee_lines,
    perturb,
    rename_codes,
    round_times_to_day,
    scale_volume,
)
from bench.quality import figures, targets
from fraudnet.detectors.evaluate import evaluate

INSTS = ["H31010000001", "H31010000002", "H31010000003", "P31010000004"]
PRACS = ["D310100000001", "D310100000002", "Y310100000003"]
DRUGS = ["XA01AA001A001010101010", "XB02BB002B002020202020", "001234567890123"]
PERSONS = [f"3101000{i:013d}" for i in range(1, 13)]
SCHEME_PERSONS = PERSONS[:2]   # in the planted scheme
LOOK_PERSONS = PERSONS[2:3]    # a look-alike
START = datetime(2025, 1, 1, 8, 30, 15)
KEY_DRUG = DRUGS[2]            # billed on every person's second visit
DEAD_PERSON, DEATH = PERSONS[5], "2025-03-01"  # days after the person's first visit (day 35)


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(header)
        w.writerows(rows)


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def city(tmp_path: Path) -> Path:
    """12 persons, 4 institutions, 3 visits per person (one stay each for the first 4, two of them maternity), a
    settlement and two fee lines per visit; one planted over-price scheme at the first hospital and one look-alike."""
    d = tmp_path / "city"
    d.mkdir()
    _write(d / "medins_info.csv", ["fixmedins_code", "fixmedins_name", "fixmedins_type", "hosp_lv", "admdvs"],
           [[c, f"机构{i}", "2" if c.startswith("P") else "1", "01", "310101"] for i, c in enumerate(INSTS)])
    _write(d / "prac_info.csv", ["prac_psn_code", "prac_psn_name", "prac_psn_type", "fixmedins_code", "dept_code"],
           [[p, f"医生{i}", "3" if p.startswith("Y") else "1", INSTS[i], "A01"] for i, p in enumerate(PRACS)])
    _write(d / "psn_info.csv", ["psn_no", "psn_name", "gend", "brdy", "certno", "insutype", "insuplc_admdvs",
                                "death_date"],
           [[p, f"人{i}", "1", "1980-01-01", f"31010119800101{i:04d}", "310", "310100",
             DEATH if p == DEAD_PERSON else ""] for i, p in enumerate(PERSONS)])
    _write(d / "hilist.csv", ["hilist_code", "hilist_name", "list_type", "pric_uplmt_amt", "key_drug_flag"],
           [[c, f"药{i}", "101", "10.00", "1" if c == KEY_DRUG else "0"] for i, c in enumerate(DRUGS)])
    mdtrt, setl, fees, n = [], [], [], 0
    for pi, psn in enumerate(PERSONS):
        for v in range(3):
            n += 1
            mid, sid = f"M{n:06d}", f"S{n:06d}"
            inst = INSTS[(pi + v) % len(INSTS)]
            begin = START + timedelta(days=7 * pi + 40 * v, hours=v)
            inpatient = v == 0 and pi < 4
            end = begin + timedelta(days=5 if inpatient else 0, minutes=30)
            stay = "52" if pi % 2 else "21"  # ordinary and maternity stays
            mdtrt.append([mid, psn, inst, stay if inpatient else "11", begin.isoformat(sep=" "),
                          end.isoformat(sep=" "), "03", PRACS[v % len(PRACS)], "A01", "J06.900", "感冒", "310100",
                          "op1"])
            setl.append([sid, mid, psn, inst, end.isoformat(sep=" "), "100.00", "60.00", "60.00", "0", "40.00", "03",
                         "0"])
            for k in range(2):
                fees.append([f"F{n:06d}{k}", mid, psn, sid, (begin + timedelta(minutes=k)).isoformat(sep=" "),
                             DRUGS[k + (v % 2)], "药", "101", "2", "12.00", "24.00", PRACS[v % len(PRACS)], "A01", "7"])
    _write(d / "mdtrt.csv", ["mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime",
                             "mdtrt_cert_type", "atddr_no", "dept_code", "dise_codg", "dise_name", "insuplc_admdvs",
                             "opter_id"], mdtrt)
    _write(d / "setl.csv", ["setl_id", "mdtrt_id", "psn_no", "fixmedins_code", "setl_time", "medfee_sumamt",
                            "hifp_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "mdtrt_cert_type",
                            "refd_setl_flag"], setl)
    _write(d / "fee_list.csv", ["feedetl_sn", "mdtrt_id", "psn_no", "setl_id", "fee_ocur_time", "hilist_code",
                                "hilist_name", "list_type", "cnt", "pric", "det_item_fee_sumamt", "bilg_dr_codg",
                                "bilg_dept_codg", "prd_days"], fees)
    _write(d / "phar_inv.csv", ["fixmedins_code", "hilist_code", "inv_data_type", "cnt", "occur_time", "spler_name"],
           [[INSTS[3], DRUGS[0], "3", "40", "2025-01-02 09:00:00", "供应商"],
            [INSTS[3], DRUGS[1], "4", "3", "2025-01-03 10:00:00", ""]])
    evidence = [m[0] for m in mdtrt if m[1] in SCHEME_PERSONS]
    truth = {"generator": "hand", "seed": 0,
             "schemes": [{"scheme_id": "price-1", "kind": "rule:over_standard_price", "persons": SCHEME_PERSONS,
                          "practitioners": [PRACS[0]], "institutions": [INSTS[0]], "evidence": evidence,
                          "params": {"basket": [DRUGS[0]], "prescriber": PRACS[0]}},
                         {"scheme_id": "imp-1", "kind": "rule:impersonation", "persons": SCHEME_PERSONS[:1],
                          "practitioners": [], "institutions": INSTS[:2], "evidence": evidence[:2]}],
             "lookalikes": [{"kind": "chronic_refill", "persons": LOOK_PERSONS, "institutions": [INSTS[3]],
                             "prescriber": PRACS[2], "drug": DRUGS[1]}]}
    (d / "truth.json").write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    return d


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file())


# ---------------------------------------------------------------------------------------------- renamed
def test_renamed_codes_are_consistent_across_tables_and_truth(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "renamed"
    rename_codes(city, out, seed=3)
    text = _all_text(out)
    for code in [*INSTS, *PRACS, *DRUGS, *PERSONS]:
        assert code not in text, f"{code} survived the renaming"
    persons = {r["psn_no"] for r in _read(out / "psn_info.csv")}
    insts = {r["fixmedins_code"] for r in _read(out / "medins_info.csv")}
    pracs = {r["prac_psn_code"] for r in _read(out / "prac_info.csv")}
    drugs = {r["hilist_code"] for r in _read(out / "hilist.csv")}
    assert len(persons) == len(PERSONS) and len(insts) == len(INSTS) and len(pracs) == len(PRACS)
    assert all(i.startswith("4403") for i in insts)
    visits = _read(out / "mdtrt.csv")
    for v in visits:
        assert v["psn_no"] in persons and v["fixmedins_code"] in insts and v["atddr_no"] in pracs
        assert v["dise_codg"] == "J06.900"  # diagnosis codes are kept
    for f in _read(out / "fee_list.csv"):
        assert f["hilist_code"] in drugs and f["bilg_dr_codg"] in pracs and f["psn_no"] in persons
    for r in _read(out / "prac_info.csv"):
        assert r["fixmedins_code"] in insts
    # truth names the same new codes as the tables: the scheme's evidence visits are its persons' visits
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    scheme = truth["schemes"][0]
    by_id = {v["mdtrt_id"]: v for v in visits}
    assert {by_id[e]["psn_no"] for e in scheme["evidence"]} == set(scheme["persons"])
    old_visits = {r["mdtrt_id"]: r for r in _read(city / "mdtrt.csv")}
    first_inst_new = {by_id[m]["fixmedins_code"] for m, r in old_visits.items() if r["fixmedins_code"] == INSTS[0]}
    assert scheme["institutions"] == sorted(first_inst_new)
    fee_new = {(f["mdtrt_id"], f["feedetl_sn"]): f["hilist_code"] for f in _read(out / "fee_list.csv")}
    fee_old = {(f["mdtrt_id"], f["feedetl_sn"]): f["hilist_code"] for f in _read(city / "fee_list.csv")}
    drug0_new = {fee_new[k] for k, c in fee_old.items() if c == DRUGS[0]}
    assert scheme["params"]["basket"] == sorted(drug0_new)  # nested truth values renamed too
    look = truth["lookalikes"][0]
    assert look["persons"][0] in persons and look["prescriber"] in pracs and look["drug"] in drugs
    # deterministic by seed, different with another seed
    rename_codes(city, tmp_path / "again", seed=3)
    rename_codes(city, tmp_path / "other", seed=4)
    assert (tmp_path / "again" / "truth.json").read_text() == (out / "truth.json").read_text()
    assert (tmp_path / "other" / "truth.json").read_text() != (out / "truth.json").read_text()


# ---------------------------------------------------------------------------------------------- day times
def test_day_rounding_zeroes_every_time_and_keeps_the_day(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "day"
    entry = round_times_to_day(city, out)
    for table, cols in {"mdtrt": ("begntime", "endtime"), "setl": ("setl_time",), "fee_list": ("fee_ocur_time",),
                        "phar_inv": ("occur_time",)}.items():
        old, new = _read(city / f"{table}.csv"), _read(out / f"{table}.csv")
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            for c in cols:
                assert b[c] == a[c][:10] + " 00:00:00"
            assert {k: v for k, v in a.items() if k not in cols} == {k: v for k, v in b.items() if k not in cols}
    assert (out / "psn_info.csv").read_text() == (city / "psn_info.csv").read_text()
    assert {u["scheme_id"] for u in entry["unsupported"]} == {"imp-1"}  # the impersonation needs the time of day
    assert "rule:duplicate_charge" in TIME_OF_DAY_KINDS  # same item at the same second
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert truth["perturbation"]["name"] == "day_times"


# ---------------------------------------------------------------------------------------------- fee lines
def test_drop_fee_lines_drops_exactly_those_institutions_lines(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "nofee"
    entry = drop_fee_lines(city, out, seed=2, share=0.5)
    dropped = set(entry["changes"]["institutions_dropped"])
    assert len(dropped) == 2 and dropped <= set(INSTS)
    inst_of = {r["mdtrt_id"]: r["fixmedins_code"] for r in _read(city / "mdtrt.csv")}
    old, new = _read(city / "fee_list.csv"), _read(out / "fee_list.csv")
    expected = [r for r in old if inst_of[r["mdtrt_id"]] not in dropped]
    assert new == expected
    assert (out / "mdtrt.csv").read_text() == (city / "mdtrt.csv").read_text()  # visits untouched
    truth = json.loads((city / "truth.json").read_text(encoding="utf-8"))
    ev = truth["schemes"][0]["evidence"]
    lost = sum(inst_of[e] in dropped for e in ev) / len(ev)
    assert ("price-1" in {u["scheme_id"] for u in entry["unsupported"]}) == (lost > 0.5)
    assert "imp-1" not in {u["scheme_id"] for u in entry["unsupported"]}  # needs no fee lines
    assert drop_fee_lines(city, tmp_path / "again", seed=2, share=0.5)["changes"] == entry["changes"]


# ---------------------------------------------------------------------------------------------- volume
def test_volume_div10_keeps_evidence_and_referential_integrity(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "thin"
    perturb(city, out, "volume_div10", seed=5)
    visits = {r["mdtrt_id"] for r in _read(out / "mdtrt.csv")}
    truth = json.loads((city / "truth.json").read_text(encoding="utf-8"))
    evidence = {e for s in truth["schemes"] for e in s["evidence"]}
    assert evidence <= visits
    assert len(visits) < len(_read(city / "mdtrt.csv"))
    setl = _read(out / "setl.csv")
    assert {r["mdtrt_id"] for r in setl} == visits
    fees = _read(out / "fee_list.csv")
    assert {r["mdtrt_id"] for r in fees} == visits
    assert {r["setl_id"] for r in fees} <= {r["setl_id"] for r in setl}
    old_fees = {(r["mdtrt_id"], r["feedetl_sn"]) for r in _read(city / "fee_list.csv") if r["mdtrt_id"] in visits}
    assert {(r["mdtrt_id"], r["feedetl_sn"]) for r in fees} == old_fees  # a kept visit keeps all its lines
    assert [float(r["cnt"]) for r in _read(out / "phar_inv.csv")] == [4.0, 0.3]


def test_volume_x10_copies_background_visits_only(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "x10"
    perturb(city, out, "volume_x10", seed=5)
    old = {r["mdtrt_id"]: r for r in _read(city / "mdtrt.csv")}
    new = _read(out / "mdtrt.csv")
    ids = [r["mdtrt_id"] for r in new]
    assert len(ids) == len(set(ids))
    copies = [r for r in new if r["mdtrt_id"] not in old]
    special = set(SCHEME_PERSONS) | set(LOOK_PERSONS)
    key_visits = {f["mdtrt_id"] for f in _read(city / "fee_list.csv") if f["hilist_code"] == KEY_DRUG}
    eligible = [r for r in old.values() if r["psn_no"] not in special and r["med_type"] not in {"21", "52"}
                and r["mdtrt_id"] not in key_visits]
    assert 0.4 * 9 * len(eligible) < len(copies) <= 9 * len(eligible)
    assert not any(c["mdtrt_id"].rsplit("-c", 1)[0] in key_visits for c in copies)  # no extra key-drug supply
    dead = [c for c in copies if c["psn_no"] == DEAD_PERSON]
    assert dead and all(c["begntime"][:10] <= DEATH for c in dead)  # nobody visits after death
    places: dict[tuple[str, str], set[str]] = {}
    for r in new:
        places.setdefault((r["psn_no"], r["begntime"][:10]), set()).add(r["fixmedins_code"])
    for c in copies:  # no copy puts a person at two institutions on one day
        assert len(places[(c["psn_no"], c["begntime"][:10])]) == 1
    first, last = min(r["begntime"] for r in old.values()), max(r["begntime"] for r in old.values())
    for c in copies:
        src = old[c["mdtrt_id"].rsplit("-c", 1)[0]]
        assert c["psn_no"] == src["psn_no"] and c["psn_no"] not in special and c["med_type"] == "11"
        shift = datetime.fromisoformat(c["begntime"]) - datetime.fromisoformat(src["begntime"])
        assert shift.seconds == 0 and abs(shift.days) <= 30  # whole days, time of day kept
        assert datetime.fromisoformat(c["endtime"]) - datetime.fromisoformat(src["endtime"]) == shift
        assert first <= c["begntime"] <= last
    setl = _read(out / "setl.csv")
    assert {r["mdtrt_id"] for r in setl} == set(ids)
    assert len({r["setl_id"] for r in setl}) == len(setl)
    fees = _read(out / "fee_list.csv")
    assert {r["mdtrt_id"] for r in fees} == set(ids)
    setl_of = {r["setl_id"]: r["mdtrt_id"] for r in setl}
    assert all(setl_of[f["setl_id"]] == f["mdtrt_id"] for f in fees)
    assert len(fees) == 2 * len(ids)
    assert [float(r["cnt"]) for r in _read(out / "phar_inv.csv")] == [400.0, 30.0]
    with pytest.raises(ValueError):
        scale_volume(city, tmp_path / "bad", seed=1, factor=2.5)


# ---------------------------------------------------------------------------------------------- evaluation
def _lead(kind: str, severity: str, persons: list[str], evidence: list[str], institutions: list[str] = ()) -> dict:
    return {"kind": kind, "severity": severity, "score": {"red": 0.9, "orange": 0.7, "yellow": 0.3}[severity],
            "persons": persons, "practitioners": [], "institutions": list(institutions), "evidence": evidence}


def test_lookalike_lead_kinds_replace_the_built_in_kinds() -> None:
    truth = {"schemes": [],
             "lookalikes": [{"kind": "family", "persons": ["p1", "p2"], "institutions": ["H1"]},
                            {"kind": "family", "persons": ["p3"], "institutions": ["H1"],
                             "lead_kinds": ["rule:after_death"]},
                            {"kind": "dialysis", "persons": ["p4"], "institutions": ["H2"],
                             "lead_kinds": ["rule:overlapping_stays"]}]}
    ring = _lead("collusion_ring", "red", ["p1", "p3"], ["m1"], ["H1"])
    death = _lead("rule:after_death", "red", ["p3"], ["m2"], ["H9"])
    stays = _lead("rule:overlapping_stays", "orange", ["p4"], ["m3"], ["H9"])  # other institution, same person
    out = evaluate([ring, death, stays], truth)["lookalikes"]
    # the first family (built-in kinds) is blamed by the ring; the second only by an after-death lead
    assert out["family"]["flagged"]["red"] == 2
    only_ring = evaluate([ring], truth)["lookalikes"]
    assert only_ring["family"]["flagged"]["red"] == 1
    # an unknown look-alike kind with its own lead kinds: a person lead counts through its persons
    assert out["dialysis"]["flagged"]["orange"] == 1
    assert evaluate([ring, death], truth)["lookalikes"]["dialysis"]["flagged"]["orange"] == 0


def test_lookalike_with_own_kinds_is_blamed_through_the_right_entity() -> None:
    truth = {"schemes": [], "lookalikes": [
        {"kind": "nursing_home", "persons": ["n1", "n2"], "institutions": ["C1"], "lead_kinds": ["collusion_ring"]},
        {"kind": "new_ward", "persons": ["w1"], "institutions": ["H1"], "lead_kinds": ["rule:discharge_growth"]},
        {"kind": "big_hospital", "persons": [], "institutions": ["H1"], "lead_kinds": ["collusion_ring"]}]}
    # a ring at the nursing home's clinic of other people does not blame the residents; it blames a hospital
    # named without persons
    ring = _lead("collusion_ring", "red", ["x1", "x2"], ["m1"], ["C1", "H1"])
    out = evaluate([ring], truth)["lookalikes"]
    assert out["nursing_home"]["flagged_red"] == 0 and out["big_hospital"]["flagged_red"] == 1
    assert evaluate([_lead("collusion_ring", "red", ["n2"], ["m1"], ["C9"])], truth)["lookalikes"][
        "nursing_home"]["flagged_red"] == 1
    # an institution rule on the ward's hospital blames the ward whoever its patients are
    growth = _lead("rule:discharge_growth", "orange", ["y1"], ["m2"], ["H1"])
    assert evaluate([growth], truth)["lookalikes"]["new_ward"]["flagged"]["orange"] == 1


def test_after_death_and_overlapping_stays_are_person_kinds() -> None:
    scheme = {"scheme_id": "d1", "kind": "rule:after_death", "persons": ["p1"], "institutions": ["H1", "H2"],
              "evidence": ["m1", "m2", "m3", "m4", "m5"]}
    # a lead on the same person sharing one of five evidence visits, at another institution: matched by the person
    lead = _lead("rule:after_death", "red", ["p1"], ["m1", "x1", "x2"], ["H3"])
    result = evaluate([lead], {"schemes": [scheme], "lookalikes": []})
    assert result["kinds"]["rule:after_death"]["recall"] == 1.0
    other = _lead("rule:overlapping_stays", "red", ["p9"], ["m1", "x1", "x2"], ["H1"])
    scheme2 = {**scheme, "kind": "rule:overlapping_stays"}
    assert evaluate([other], {"schemes": [scheme2], "lookalikes": []})["kinds"]["rule:overlapping_stays"][
        "recall"] == 0.0


# ---------------------------------------------------------------------------------------------- figures
def test_figures_leave_unsupported_schemes_out_of_the_floor() -> None:
    truth = {"schemes": [{"scheme_id": "a", "kind": "card_skimming", "persons": ["p1"], "institutions": ["P1"],
                          "evidence": ["m1", "m2"]},
                         {"scheme_id": "b", "kind": "rule:bed_hanging", "persons": ["p2"], "institutions": ["H1"],
                          "evidence": ["m3"]},
                         {"scheme_id": "c", "kind": "rule:bed_hanging", "persons": ["p3"], "institutions": ["H2"],
                          "evidence": ["m4"]}],
             "lookalikes": [{"kind": "busy_hospital", "persons": [], "institutions": ["H3"]}],
             "perturbation": {"name": "x", "unsupported": [{"scheme_id": "a", "kind": "card_skimming"},
                                                           {"scheme_id": "c", "kind": "rule:bed_hanging"}]}}
    leads = [_lead("rule:bed_hanging", "red", ["p2"], ["m3"], ["H1"]),
             _lead("anomaly:institution", "orange", [], ["m9"], ["H3"])]
    fig = figures(leads, truth)
    assert fig["kinds"]["card_skimming"]["unsupported"] is True
    assert fig["kinds"]["rule:bed_hanging"]["recall"] == 0.5
    assert fig["kinds"]["rule:bed_hanging"]["recall_supported"] == 1.0
    assert fig["unplanted_red_orange_total"] == 1 and fig["planted_schemes"] == 3
    t = targets(fig)
    assert t["per_kind_floor"]["pass"] and t["per_kind_floor"]["not_judged_unsupported"] == ["card_skimming"]
    assert t["unplanted_below_planted"]["pass"]
    assert fig["lookalikes"]["busy_hospital"]["orange"] == 1 and t["no_lookalike_red"]["pass"]


def test_show_prints_figures_comparison_tiers_and_targets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.quality import main

    truth = {"schemes": [{"scheme_id": "a", "kind": "rule:bed_hanging", "persons": ["p1"], "institutions": ["H1"],
                          "evidence": ["m1"]}], "lookalikes": []}
    runs = []
    for persons, severity in ((20000, "red"), (200000, "orange")):
        fig = figures([_lead("rule:bed_hanging", severity, ["p1"], ["m1"], ["H1"])], truth)
        runs.append({"generator": "product", "persons": persons, "seed": 1, "perturbation": "none",
                     "generator_fingerprint": "f", "visits": 10, "leads": 1, "ingest_seconds": 1.0,
                     "detect_seconds": 2.0, "detect_cpu_seconds": 1.5, **fig, "targets": targets(fig)})
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"commit": "abc", "runs": runs}), encoding="utf-8")
    assert main(["--show", str(path), "--compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PASS  recall ≥ 0.9 and precision ≥ 0.8 per planted kind (1/1 kinds)" in out
    assert "tiers across sizes: product · none" in out
    assert "1.00 (1/1)" in out and "0.00 (0/1)" in out  # red share at 20k and at 200k side by side
    assert "prev R" in out
