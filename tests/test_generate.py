"""Tests of the synthetic city generator: determinism, contract conformity, planted truth and look-alikes."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fraudnet.cli import main as cli_main
from fraudnet.contract import MED_TYPES, TABLES
from fraudnet.generate.city import generate_city
from fraudnet.generate.schemes import LOOKALIKE_KINDS, SCHEME_KINDS

TABLE_FILES = ("psn_info", "medins_info", "prac_info", "mdtrt", "setl", "fee_list", "hilist", "phar_inv")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
MONEY_RE = re.compile(r"^-?\d+\.\d{2}$")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


class City:
    """The tables of a generated city read as strings (as an ingest would see them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.t = {name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
                  for name in TABLE_FILES}
        self.truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        m = self.t["mdtrt"]
        self.visits = m.set_index("mdtrt_id")
        fee = self.t["fee_list"].copy()
        fee["amt"] = fee["det_item_fee_sumamt"].astype(float)
        fee["pric_f"] = fee["pric"].astype(float)
        fee["days_f"] = pd.to_numeric(fee["prd_days"], errors="coerce")
        self.fee = fee
        hl = self.t["hilist"].set_index("hilist_code")
        self.ceiling = hl["pric_uplmt_amt"].astype(float)
        self.max_days = pd.to_numeric(hl["max_days_per_fill"], errors="coerce")
        self.psn = self.t["psn_info"].set_index("psn_no")
        self.inst = self.t["medins_info"].set_index("fixmedins_code")

    def schemes(self, kind: str) -> list[dict]:
        return [s for s in self.truth["schemes"] if s["kind"] == kind]

    def evidence(self, kind: str | None = None) -> set[str]:
        return {e for s in self.truth["schemes"] if kind in (None, s["kind"]) for e in s["evidence"]}


@pytest.fixture(scope="module")
def city(small_city_dir: Path) -> City:
    return City(small_city_dir)


# ---------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes(small_city_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_city(again, persons=2000, seed=7)
    assert _digest(again) == _digest(small_city_dir)


def test_same_bytes_across_processes(tmp_path: Path) -> None:
    """Determinism must not depend on Python's per-process string hashing."""
    import os
    import subprocess
    import sys

    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"p{hash_seed}"
        code = ("from pathlib import Path; from fraudnet.generate.city import generate_city; "
                f"generate_city(Path({str(out)!r}), persons=700, seed=21, fmt='parquet', days=120)")
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
        digests.append(_digest(out))
    assert digests[0] == digests[1]


def test_different_seed_differs(small_city_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_city(other, persons=2000, seed=8)
    a, b = _digest(other), _digest(small_city_dir)
    assert set(a) == set(b)
    for name in ("psn_info.csv", "mdtrt.csv", "setl.csv", "fee_list.csv", "truth.json"):
        assert a[name] != b[name], name


# ---------------------------------------------------------------- contract conformity
def test_files_and_columns_follow_the_contract(city: City) -> None:
    for name in TABLE_FILES:
        cols = list(city.t[name].columns)
        fields = [f.name for f in TABLES[name].fields]
        assert set(cols) <= set(fields), f"{name}: {set(cols) - set(fields)}"
        assert set(TABLES[name].required_fields) <= set(cols)
        assert cols == [f for f in fields if f in cols], f"{name}: columns not in contract order"
        assert len(city.t[name]) > 0


def test_keys_are_unique(city: City) -> None:
    for name in TABLE_FILES:
        key = list(TABLES[name].key)
        df = city.t[name]
        assert not df.duplicated(key).any(), f"{name}: duplicate key {key}"


def test_foreign_keys_resolve(city: City) -> None:
    t = city.t
    persons = set(t["psn_info"]["psn_no"])
    insts = set(t["medins_info"]["fixmedins_code"])
    pracs = set(t["prac_info"]["prac_psn_code"])
    items = set(t["hilist"]["hilist_code"])
    visits = set(t["mdtrt"]["mdtrt_id"])
    setls = set(t["setl"]["setl_id"])
    assert set(t["mdtrt"]["psn_no"]) <= persons
    assert set(t["mdtrt"]["fixmedins_code"]) <= insts
    assert set(t["mdtrt"]["atddr_no"]) <= pracs
    assert set(t["prac_info"]["fixmedins_code"]) <= insts
    assert set(t["setl"]["mdtrt_id"]) == visits
    assert set(t["fee_list"]["mdtrt_id"]) == visits
    assert set(t["fee_list"]["setl_id"]) <= setls
    assert set(t["fee_list"]["hilist_code"]) <= items
    assert set(t["fee_list"]["bilg_dr_codg"]) <= pracs
    assert set(t["phar_inv"]["hilist_code"]) <= items
    pharmacies = set(t["medins_info"].query("fixmedins_type == '2'")["fixmedins_code"])
    assert set(t["phar_inv"]["fixmedins_code"]) <= pharmacies
    # an attending practitioner works at the visit's institution, except prescriptions filled elsewhere
    m = t["mdtrt"].merge(t["prac_info"][["prac_psn_code", "fixmedins_code"]], left_on="atddr_no",
                         right_on="prac_psn_code", suffixes=("", "_prac"))
    assert (m["fixmedins_code"] == m["fixmedins_code_prac"]).all()


def test_settlements_add_up(city: City) -> None:
    s = city.t["setl"].copy()
    for c in ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"):
        assert s[c].str.match(MONEY_RE).all(), c
        s[c] = (s[c].astype(float) * 100).round().astype(np.int64)
    orig = s[s["refd_setl_flag"] == "0"]
    assert orig["mdtrt_id"].is_unique
    fee_sum = (city.fee.groupby("mdtrt_id")["amt"].sum() * 100).round().astype(np.int64)
    assert (orig.set_index("mdtrt_id")["medfee_sumamt"].reindex(fee_sum.index) == fee_sum).all()
    assert (orig["fund_pay_sumamt"] + orig["acct_pay"] + orig["psn_cash_pay"] == orig["medfee_sumamt"]).all()
    assert (orig["hifp_pay"] <= orig["fund_pay_sumamt"]).all()
    assert (orig[["hifp_pay", "acct_pay", "psn_cash_pay"]] >= 0).all().all()
    refunds = s[s["refd_setl_flag"] == "1"]
    assert 0.001 < len(refunds) / len(orig) < 0.02
    paired = refunds.merge(orig, on="mdtrt_id", suffixes=("", "_o"))
    assert len(paired) == len(refunds)
    assert (paired["medfee_sumamt"] == -paired["medfee_sumamt_o"]).all()
    assert (paired["setl_id"] != paired["setl_id_o"]).all()
    assert (paired["setl_time"] > paired["setl_time_o"]).all()
    # line amounts are count x price
    f = city.fee
    assert ((f["cnt"].astype(float) * f["pric_f"] - f["amt"]).abs() < 0.006).all()


def test_formats_codes_and_identifiers(city: City) -> None:
    t = city.t
    for name, cols in {"mdtrt": ("begntime", "endtime"), "setl": ("setl_time",), "fee_list": ("fee_ocur_time",),
                       "phar_inv": ("occur_time",)}.items():
        for c in cols:
            assert t[name][c].str.match(TIME_RE).all(), f"{name}.{c}"
    m = t["mdtrt"]
    assert set(m["med_type"]) <= set(MED_TYPES) and {"11", "13", "14", "21", "41"} <= set(m["med_type"])
    assert (m["endtime"] >= m["begntime"]).all()
    assert set(m["vali_flag"]) == {"0", "1"} and (m["vali_flag"] == "0").mean() < 0.01
    assert set(m["mdtrt_cert_type"]) == {"01", "02", "03"}
    p = t["psn_info"]
    assert p["certno"].str.match(r"^\d{17}[\dX]$").all()
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for cert in p["certno"].head(200):
        assert "10X98765432"[sum(int(c) * wt for c, wt in zip(cert[:17], weights, strict=True)) % 11] == cert[17]
    # the sex digit of the ID number agrees with gend
    assert ((p["certno"].str[16].astype(int) % 2 == 1) == (p["gend"] == "1")).all()
    assert p["mob"].str.match(r"^1\d{10}$").all()
    assert p["psn_no"].str.len().between(20, 30).all()
    assert p["live_addr"].str.contains("上海市").all() and p["live_addr"].str.contains("弄").all()
    assert set(p["gend"]) == {"1", "2"}
    pr = t["prac_info"]
    docs = pr[pr["prac_psn_type"] == "1"]["prac_psn_code"]
    assert docs.str.match(r"^D\d{12}$").all()
    pharmacists = pr[pr["prac_psn_type"] == "3"]["prac_psn_code"]
    assert len(pharmacists) and pharmacists.str.match(r"^Y\d{12}$").all()
    inst = t["medins_info"]
    assert inst["hosp_lv"].str.match(r"^(0[1-9]|1[01])$").all()
    assert inst["fixmedins_code"].str.match(r"^[HP]\d{11}$").all()
    assert {"01", "02", "03"} & set(inst["hosp_lv"]) and "11" in set(inst["hosp_lv"])
    lnt, lat = inst["lnt"].astype(float), inst["lat"].astype(float)
    assert lnt.between(120.9, 121.9).all() and lat.between(30.7, 31.6).all()
    f = t["fee_list"]
    assert set(f["list_type"]) == {"101", "201", "301"}
    assert f.duplicated(["mdtrt_id", "feedetl_sn"]).sum() == 0
    drugs = f[f["list_type"] == "101"]
    assert (drugs["prd_days"] != "").all() and (f[f["list_type"] != "101"]["prd_days"] == "").all()
    hl = t["hilist"]
    assert set(hl["key_drug_flag"]) == {"0", "1"}
    assert set(hl.loc[hl["list_type"] == "101", "max_days_per_fill"]) == {"7", "30"}
    assert (hl.loc[hl["list_type"] != "101", "max_days_per_fill"] == "").all()


def test_city_is_realistic(city_20k_dir: Path) -> None:
    m = pd.read_csv(city_20k_dir / "mdtrt.csv", dtype=str, usecols=["psn_no", "med_type", "begntime", "endtime",
                                                                     "fixmedins_code"])
    inst = pd.read_csv(city_20k_dir / "medins_info.csv", dtype=str)
    n = 20000
    per_person = len(m) / n
    assert 6.5 <= per_person <= 9.0
    inpatient = m[m["med_type"] == "21"]
    assert 0.10 <= inpatient["psn_no"].nunique() / n <= 0.18
    los = (pd.to_datetime(inpatient["endtime"]) - pd.to_datetime(inpatient["begntime"])).dt.days
    assert 5 <= los.mean() <= 12
    share = m["med_type"].value_counts(normalize=True)
    assert share["11"] > share["41"] > share["14"] > share["21"] > 0.01
    pharmacies = (inst["fixmedins_type"] == "2").sum()
    assert 1400 <= n / pharmacies <= 2100
    # a few big tertiary hospitals take a large share of hospital visits
    hosp = m[m["med_type"].isin(["11", "13", "21"])]
    lv = hosp.merge(inst, on="fixmedins_code")["hosp_lv"]
    assert lv.isin(["01", "02", "03"]).mean() > 0.25
    assert len(inst[inst["hosp_lv"].isin(["01", "02", "03"])]) <= 4
    # schemes scale with the city: about one of each kind per 2-4k persons
    truth = json.loads((city_20k_dir / "truth.json").read_text(encoding="utf-8"))
    for kind in SCHEME_KINDS:
        assert 4 <= sum(s["kind"] == kind for s in truth["schemes"]) <= 11, kind


# ---------------------------------------------------------------- planted truth
def test_truth_structure_and_counts(city: City) -> None:
    truth = city.truth
    assert truth["seed"] == 7 and truth["persons"] == 2000 and truth["days"] == 365
    assert truth["start"] == "2025-01-01"
    assert truth["counts"]["mdtrt"] == len(city.t["mdtrt"])
    kinds = [s["kind"] for s in truth["schemes"]]
    for kind in SCHEME_KINDS:
        assert kinds.count(kind) >= 2, kind
    ids = [s["scheme_id"] for s in truth["schemes"]]
    assert len(ids) == len(set(ids))
    for s in truth["schemes"]:
        assert {"scheme_id", "kind", "persons", "practitioners", "institutions", "evidence", "description_en",
                "params"} <= set(s)
        assert s["evidence"] and s["persons"] and s["institutions"] and s["description_en"]
    la = {x["kind"] for x in truth["lookalikes"]}
    assert la == set(LOOKALIKE_KINDS)


def test_evidence_belongs_to_scheme_members(city: City) -> None:
    v = city.visits
    pracs = set(city.t["prac_info"]["prac_psn_code"])
    for s in city.truth["schemes"]:
        ev = v.loc[s["evidence"]]  # KeyError if an evidence id is missing
        assert (ev["vali_flag"] == "1").all()
        assert set(ev["psn_no"]) <= set(s["persons"]), s["scheme_id"]
        assert set(ev["fixmedins_code"]) <= set(s["institutions"]), s["scheme_id"]
        assert set(s["practitioners"]) <= pracs
        assert set(s["persons"]) <= set(city.psn.index)
    # evidence is never refunded
    refunded = set(city.t["setl"].query("refd_setl_flag == '1'")["mdtrt_id"])
    assert not refunded & city.evidence()


def test_ids_do_not_reveal_planted_visits(city: City) -> None:
    ev = city.evidence()
    m = city.t["mdtrt"]
    planted = m["mdtrt_id"].isin(ev)
    assert m.loc[planted, "mdtrt_id"].str.len().eq(20).all() and m.loc[~planted, "mdtrt_id"].str.len().eq(20).all()
    # planted visits are interleaved with ordinary ones in time order
    pos = np.flatnonzero(planted.to_numpy())
    assert pos.min() < len(m) * 0.2 and pos.max() > len(m) * 0.8
    cents = city.t["setl"]["medfee_sumamt"].str[-2:]
    planted_setl = city.t["setl"]["mdtrt_id"].isin(ev)
    assert (cents[planted_setl] != "00").mean() > 0.5


def test_collusion_rings_are_admitted_together(city: City) -> None:
    for s in city.schemes("collusion_ring"):
        ev = city.visits.loc[s["evidence"]]
        assert (ev["med_type"] == "21").all() and ev["fixmedins_code"].nunique() == 1
        assert 6 <= len(s["persons"]) <= 20 and 1 <= len(s["practitioners"]) <= 3
        assert set(ev["atddr_no"]) <= set(s["practitioners"])
        day = pd.to_datetime(ev["begntime"]).dt.normalize()
        by_week = ev.groupby(((day - day.min()).dt.days + 1) // 3)["psn_no"].nunique()
        assert (by_week >= 4).sum() >= 3
        mobs = city.psn.loc[s["persons"], "mob"]
        assert mobs.value_counts().max() >= 2  # recruiter phone shared
        assert ev["dise_codg"].nunique() <= 2


def test_card_skimming_bursts(city: City) -> None:
    for s in city.schemes("card_skimming"):
        ev = city.visits.loc[s["evidence"]]
        assert 15 <= len(s["persons"]) <= 80
        assert ev.groupby("fixmedins_code")["opter_id"].nunique().max() == 1
        t = pd.to_datetime(ev["begntime"])
        span = t.groupby([ev["fixmedins_code"], t.dt.date]).agg(lambda x: (x.max() - x.min()).total_seconds())
        assert (span <= 120 * 60).all()
        off_hours = ((t.dt.hour >= 21) | (t.dt.hour < 8)).mean()
        assert off_hours >= 0.0 and len(ev) >= len(s["persons"])
        home = city.psn.loc[ev["psn_no"], "live_admdvs"].to_numpy()
        assert (home != city.inst.loc[ev["fixmedins_code"], "admdvs"].to_numpy()).mean() > 0.9
        baskets = city.fee[city.fee["mdtrt_id"].isin(s["evidence"]) & (city.fee["list_type"] == "101")]
        sig = baskets.groupby("mdtrt_id")["hilist_code"].apply(lambda x: tuple(sorted(x)))
        assert sig.value_counts(normalize=True).iloc[0] >= 0.6  # near-identical baskets
    assert any((pd.to_datetime(city.visits.loc[s["evidence"], "begntime"]).dt.hour.isin([21, 22, 23, 6, 7])).mean()
               > 0.5 for s in city.schemes("card_skimming"))


def test_drug_resale_collectors_shop_around(city: City) -> None:
    key = set(city.t["hilist"].query("key_drug_flag == '1'")["hilist_code"])
    inv = city.t["phar_inv"].copy()
    inv["cnt"] = inv["cnt"].astype(float)
    for s in city.schemes("drug_resale"):
        lines = city.fee[city.fee["mdtrt_id"].isin(s["evidence"]) & city.fee["hilist_code"].isin(key)]
        lines = lines.merge(city.t["mdtrt"][["mdtrt_id", "fixmedins_code", "begntime"]], on="mdtrt_id")
        collectors = lines.groupby("psn_no")
        assert collectors.ngroups >= 3
        assert (collectors["bilg_dr_codg"].nunique() >= 4).all()
        ph = lines[lines["fixmedins_code"].str.startswith("P")]
        assert (ph.groupby("psn_no")["fixmedins_code"].nunique() >= 3).all()
        assert (collectors["days_f"].sum() > 180).all()
        span = pd.to_datetime(lines["begntime"]).groupby(lines["psn_no"]).agg(lambda x: (x.max() - x.min()).days)
        assert (span <= 90).all()
        # collectors are linked to the leader by shared phones or addresses
        members = city.psn.loc[s["persons"]]
        linked = members["mob"].duplicated(keep=False) | members["live_addr"].duplicated(keep=False)
        assert linked.mean() >= 0.5
        # at least one of the pharmacies sold more of a key drug than it bought
        sel = inv[inv["fixmedins_code"].isin(s["params"]["pharmacies"]) & inv["hilist_code"].isin(key)]
        bal = sel.pivot_table(index=["fixmedins_code", "hilist_code"], columns="inv_data_type", values="cnt",
                              aggfunc="sum", fill_value=0)
        assert (bal["4"] > bal.get("3", 0)).any()


def test_legit_pharmacies_buy_at_least_what_they_sell(city: City) -> None:
    inv = city.t["phar_inv"].copy()
    inv["cnt"] = inv["cnt"].astype(float)
    short = {(p, d) for s in city.schemes("drug_resale")
             for p in s["params"]["pharmacies"] for d in s["params"]["drugs"]}
    bal = inv.pivot_table(index=["fixmedins_code", "hilist_code"], columns="inv_data_type", values="cnt",
                          aggfunc="sum", fill_value=0)
    legit = bal[[idx not in short for idx in bal.index]]
    assert (legit["3"] >= legit["4"]).all()
    assert (bal["4"] > 0).sum() > 20


def test_rule_violations_are_present_in_evidence_and_absent_elsewhere(city: City) -> None:
    f = city.fee
    ev_all = city.evidence()
    over_price = f["pric_f"] > f["hilist_code"].map(city.ceiling) + 1e-9
    ev_op = city.evidence("rule:over_standard_price")
    for s in city.schemes("rule:over_standard_price"):
        hit = f[f["mdtrt_id"].isin(s["evidence"])].assign(op=over_price)
        assert hit.groupby("mdtrt_id")["op"].any().all()
    assert not f.loc[over_price, "mdtrt_id"].isin(ev_all - ev_op).any()
    assert f.loc[over_price, "mdtrt_id"].isin(ev_op).all()
    at_ceiling = (f["pric_f"] - f["hilist_code"].map(city.ceiling)).abs() < 1e-9
    assert at_ceiling.sum() > 0  # ordinary noise: prices exactly at the ceiling
    over_qty = f["days_f"] > f["hilist_code"].map(city.max_days)
    ev_oq = city.evidence("rule:over_quantity")
    assert f.loc[over_qty, "mdtrt_id"].isin(ev_oq).all()
    for s in city.schemes("rule:over_quantity"):
        hit = f[f["mdtrt_id"].isin(s["evidence"])].assign(oq=over_qty)
        assert hit.groupby("mdtrt_id")["oq"].any().all()
        assert hit.loc[hit["oq"], "days_f"].min() >= 2 * hit.loc[hit["oq"], "hilist_code"].map(city.max_days).min()
    dup = f.duplicated(["mdtrt_id", "hilist_code", "fee_ocur_time"], keep=False)
    for s in city.schemes("rule:duplicate_charge"):
        assert f.loc[dup, "mdtrt_id"].isin(s["evidence"]).sum() >= 2 * len(s["evidence"])
    dup_visits = set(f.loc[dup, "mdtrt_id"])
    noise = dup_visits - city.evidence("rule:duplicate_charge")
    assert len(noise) <= max(3, 0.001 * len(city.visits))  # clerical duplicates stay rare


def test_inpatient_rules(city: City) -> None:
    v = city.visits
    f = city.fee
    bed = f["hilist_name"].str.contains("床位费")
    treat_days = f[~bed].assign(day=f["fee_ocur_time"].str[:10]).groupby("mdtrt_id")["day"].nunique()
    for s in city.schemes("rule:bed_hanging"):
        ev = v.loc[s["evidence"]]
        stay_days = (pd.to_datetime(ev["endtime"]).dt.normalize() - pd.to_datetime(ev["begntime"]).dt.normalize()
                     ).dt.days
        assert ((stay_days - treat_days.reindex(ev.index).fillna(0)) >= 3).all()
    stays = v[v["med_type"] == "21"]
    ordinary = stays.index.difference(list(city.evidence("rule:bed_hanging")))
    sd = (pd.to_datetime(stays.loc[ordinary, "endtime"]).dt.normalize()
          - pd.to_datetime(stays.loc[ordinary, "begntime"]).dt.normalize()).dt.days
    assert (treat_days.reindex(ordinary).fillna(0) >= sd).mean() > 0.99
    for s in city.schemes("rule:split_admission"):
        ev = v.loc[s["evidence"]].sort_values("begntime")
        readmit = 0
        for _, g in ev.groupby("psn_no"):
            b, e = pd.to_datetime(g["begntime"]), pd.to_datetime(g["endtime"])
            gaps = (b.iloc[1:].to_numpy() - e.iloc[:-1].to_numpy()) / np.timedelta64(1, "D")
            assert (gaps <= 15).all() and g["dise_codg"].nunique() == 1
            readmit += len(gaps)
        assert readmit >= 6
    for s in city.schemes("rule:discharge_growth"):
        inst = s["institutions"][0]
        d = pd.to_datetime(stays[stays["fixmedins_code"] == inst]["endtime"]).dt.month.value_counts().sort_index()
        months = s["params"]["months"]
        recent = d.loc[d.index > 12 - months].mean()
        before = d.reindex(range(1, 13 - months), fill_value=0).mean()
        assert recent >= 1.5 * before + 4


def test_impersonation_and_sex_mismatch(city: City) -> None:
    v = city.visits
    inst = city.inst
    for s in city.schemes("rule:impersonation"):
        ev = v.loc[s["evidence"]].sort_values("begntime")
        assert ev["psn_no"].nunique() == 1
        t = pd.to_datetime(ev["begntime"]).to_numpy()
        lnt = inst.loc[ev["fixmedins_code"], "lnt"].astype(float).to_numpy()
        lat = inst.loc[ev["fixmedins_code"], "lat"].astype(float).to_numpy()
        km = np.hypot((lnt[1:] - lnt[:-1]) * 95.3, (lat[1:] - lat[:-1]) * 110.6)
        hours = (t[1:] - t[:-1]) / np.timedelta64(1, "h")
        fast = (km / np.maximum(hours, 1e-6) > 100) & (hours < 1)
        assert fast.sum() >= 3
    psa = city.fee[city.fee["hilist_name"] == "前列腺特异性抗原测定"]["mdtrt_id"]
    visits = city.t["mdtrt"].merge(city.t["psn_info"][["psn_no", "gend"]], on="psn_no")
    bad = ((visits["gend"] == "1") & visits["dise_codg"].str.startswith("O")) | (
        (visits["gend"] == "2") & (visits["dise_codg"].str.startswith("N40") | visits["mdtrt_id"].isin(psa)))
    ev = city.evidence("rule:gender_age_mismatch")
    assert set(visits.loc[bad, "mdtrt_id"]) == ev


def test_lookalikes(city: City) -> None:
    la = city.truth["lookalikes"]
    psn = city.psn
    fams = [x for x in la if x["kind"] == "family"]
    assert len(fams) >= 5
    for fam in fams:
        assert 2 <= len(fam["persons"]) <= 6
        assert psn.loc[fam["persons"], "live_addr"].nunique() == 1
        assert (psn.loc[fam["persons"], "mob"] == fam["shared_phone"]).sum() >= 2
    chronic = [x for x in la if x["kind"] == "chronic_refill"]
    assert chronic
    f = city.fee.merge(city.t["mdtrt"][["mdtrt_id", "psn_no", "fixmedins_code"]], on=["mdtrt_id", "psn_no"])
    for c in chronic[:10]:
        refills = f[(f["psn_no"] == c["persons"][0]) & (f["hilist_code"] == c["drug"])
                    & f["fixmedins_code"].str.startswith("P")]
        assert len(refills) >= 5 and refills["fixmedins_code"].nunique() == 1
        assert set(refills["bilg_dr_codg"]) == {c["prescriber"]}
    outbreaks = [x for x in la if x["kind"] == "outbreak"]
    for o in outbreaks:
        stays = city.t["mdtrt"][city.t["mdtrt"]["psn_no"].isin(o["persons"]) & (city.t["mdtrt"]["dise_codg"]
                                                                                 == "T62.900")]
        assert stays["begntime"].str[:10].nunique() == 1 and len(stays) == len(o["persons"]) >= 8
    ev_persons = {p for s in city.truth["schemes"] for p in s["persons"]}
    assert not ev_persons & {p for x in fams for p in x["persons"]}
    assert {x["kind"] for x in la} >= {"busy_hospital", "busy_pharmacy"}


# ---------------------------------------------------------------- formats, CLI, bench
def test_parquet_output(tmp_path: Path) -> None:
    summary = generate_city(tmp_path, persons=800, seed=3, fmt="parquet", days=180)
    for name in TABLE_FILES:
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.num_rows == summary.counts[name]
    mdtrt = pq.read_table(tmp_path / "mdtrt.parquet")
    assert str(mdtrt.schema.field("med_type").type) == "string"
    assert str(pq.read_table(tmp_path / "setl.parquet").schema.field("medfee_sumamt").type) == "decimal128(16, 2)"
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["days"] == 180
    assert max(mdtrt.column("begntime").to_pylist()).isoformat() < "2025-06-30"
    # a CSV city written into the same folder replaces the Parquet one
    generate_city(tmp_path, persons=600, seed=3, fmt="csv", days=120)
    assert not list(tmp_path.glob("*.parquet")) and len(list(tmp_path.glob("*.csv"))) == len(TABLE_FILES)


def test_cli_generate(tmp_path: Path) -> None:
    out = tmp_path / "cli-city"
    result = CliRunner().invoke(cli_main, ["generate", "--persons", "600", "--seed", "5", "--out", str(out),
                                           "--start", "2024-07-01", "--days", "120", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "mdtrt" in result.output and "collusion_ring" in result.output
    assert {p.name for p in out.iterdir()} == {f"{n}.csv" for n in TABLE_FILES} | {"truth.json"}
    m = pd.read_csv(out / "mdtrt.csv", dtype=str)
    assert m["begntime"].min() >= "2024-07-01" and m["endtime"].max() < "2024-10-30"


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="persons"):
        generate_city(tmp_path, persons=10, seed=1)
    with pytest.raises(ValueError, match="format"):
        generate_city(tmp_path, persons=1000, seed=1, fmt="xml")


def test_bench_run(tmp_path: Path) -> None:
    from bench.generate import run

    figures = run(1000, 2, tmp_path)
    assert figures["seconds"] > 0 and figures["rows_per_s"] > 1000 and figures["visits"] > 5000
