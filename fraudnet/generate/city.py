"""`generate_city`: a whole synthetic city (contract tables + truth.json), deterministic by seed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from fraudnet.generate import names as N
from fraudnet.generate.fees import fee_lines, settlements
from fraudnet.generate.schemes import PlantResult, plant
from fraudnet.generate.visits import DAY, VisitTable, background_visits, build_pools, impossible_pairs
from fraudnet.generate.world import M_IN, M_PHARM, MED_CODES, PHARMACY, World, build_world
from fraudnet.generate.writer import (
    dates,
    decimal_from_float,
    id_strings,
    money,
    strings,
    take,
    timestamps,
    write_table,
)

__all__ = ["CitySummary", "generate_city", "ProgressFn"]

log = logging.getLogger(__name__)

# progress(stage description, fraction done 0..1)
ProgressFn = Callable[[str, float], None]

TABLE_FILES = ("medins_info", "prac_info", "psn_info", "hilist", "mdtrt", "setl", "fee_list", "phar_inv")
REFUND_RATE = 0.004
INVALID_RATE = 0.002


@dataclass
class CitySummary:
    """What `generate_city` wrote: row counts per table, planted counts per kind, wall-clock seconds."""

    out_dir: Path
    persons: int
    seed: int
    fmt: str
    counts: dict[str, int] = field(default_factory=dict)
    schemes: dict[str, int] = field(default_factory=dict)
    lookalikes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "persons": self.persons, "seed": self.seed, "format": self.fmt,
                "counts": self.counts, "schemes": self.schemes, "lookalikes": self.lookalikes,
                "seconds": round(self.seconds, 2)}


def _noop(stage: str, fraction: float) -> None:
    return None


def _yymmdd(days_since_1970: np.ndarray) -> np.ndarray:
    """yymmdd as an integer for day numbers."""
    d = np.asarray(days_since_1970, dtype="int64").astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = (d.astype("datetime64[M]") - d.astype("datetime64[Y]")).astype(np.int64) + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return (y % 100) * 10000 + m * 100 + dd


def generate_city(out_dir: Path, persons: int, seed: int, fmt: str = "csv", days: int = 365,
                  start: date = date(2025, 1, 1), progress: ProgressFn | None = None) -> CitySummary:
    """Generate a synthetic city of `persons` insured persons over `days` days from `start` into `out_dir`.

    Writes psn_info, medins_info, prac_info, mdtrt, setl, fee_list, hilist, phar_inv (CSV or Parquet, canonical
    contract columns) and truth.json (planted schemes and legitimate look-alikes). The same seed gives
    byte-identical files. `progress(stage, fraction)` is called as the work advances.
    """
    if persons < 500:
        raise ValueError(f"persons={persons}: a city needs at least 500 persons")
    if days < 90:
        raise ValueError(f"days={days}: the period must cover at least 90 days")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format {fmt!r}: use csv or parquet")
    report = progress or _noop
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # a previous city in the same folder (maybe in the other format) must not mix with this one
    for name in (*TABLE_FILES, "truth"):
        for ext in ("csv", "parquet", "json"):
            stale = out_dir / f"{name}.{ext}"
            if stale.is_file():
                stale.unlink()
    rng = np.random.default_rng(seed)
    epoch = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    start_days = epoch // DAY

    report("persons and institutions / 参保人与机构", 0.02)
    w = build_world(rng, persons, start_days)
    pools = build_pools(w)
    vt = VisitTable()
    report("background visits / 日常就诊", 0.08)
    bg = background_visits(rng, w, vt, pools, days, start.weekday())
    n_background = vt.size
    report("planted schemes / 植入欺诈模式", 0.25)
    planted = plant(rng, w, vt, bg, pools, days, start)
    v = vt.concat()
    nv = len(v["psn"])
    order = np.lexsort((rng.random(nv), v["begn"]))
    v = {k: a[order] for k, a in v.items()}
    v = _without_impossible_background(v, order < n_background, w)
    nv = len(v["psn"])

    # invalid records and refunds (never on planted evidence)
    eligible = np.flatnonzero(~v["protect"] & (v["tag"] < 0))
    flags = rng.random(len(eligible))
    invalid = np.zeros(nv, dtype=bool)
    invalid[eligible[flags < INVALID_RATE]] = True
    refunded = np.zeros(nv, dtype=bool)
    refunded[eligible[(flags >= INVALID_RATE) & (flags < INVALID_RATE + REFUND_RATE)]] = True

    report("fee lines / 费用明细", 0.4)
    lines = fee_lines(rng, w, pools, v)
    total = np.bincount(lines["visit"], weights=lines["cents"], minlength=nv).astype(np.int64)
    split = settlements(rng, w, v, total)

    report("identifiers / 编号", 0.55)
    # mdtrt_id: "31" + yymmdd of the visit + 12-digit serial (ascending with time, like a platform sequence)
    mdtrt_id = id_strings("31", _yymmdd(v["begn"] // DAY + start_days) * 10**12
                          + rng.integers(10**6, 10**7) + np.arange(nv), 18)
    # settlements: one per visit at its end, plus refunds later with negative amounts
    setl_time = np.where(v["med"] == M_IN, v["endt"], v["endt"] + rng.integers(0, 600, nv))
    ref_idx = np.flatnonzero(refunded)
    ref_time = setl_time[ref_idx] + rng.integers(600, 3 * DAY, len(ref_idx))
    s_visit = np.r_[np.arange(nv), ref_idx]
    s_time = np.r_[setl_time, ref_time]
    s_refund = np.r_[np.zeros(nv, dtype=bool), np.ones(len(ref_idx), dtype=bool)]
    s_order = np.lexsort((s_refund, s_visit, s_time))
    s_visit, s_time, s_refund = s_visit[s_order], s_time[s_order], s_refund[s_order]
    ns = len(s_visit)
    setl_id = id_strings("3101", rng.integers(10**7, 10**8) + np.arange(ns), 16)
    sign = np.where(s_refund, -1, 1)
    # the original settlement of each visit (fee lines point at it)
    orig_setl_pos = np.empty(nv, dtype=np.int64)
    orig_setl_pos[s_visit[~s_refund]] = np.flatnonzero(~s_refund)
    nl = len(lines["visit"])
    feedetl_sn = id_strings("", rng.integers(10**8, 10**9) + np.arange(nl), 20)

    report("writing tables / 写出数据表", 0.65)
    files: list[Path] = []
    counts: dict[str, int] = {}
    dcode = np.asarray([d.admdvs for d in N.DISTRICTS])

    def put(name: str, cols: dict[str, pa.Array]) -> None:
        files.append(write_table(out_dir, name, cols, fmt))
        counts[name] = len(next(iter(cols.values())))

    put("medins_info", {
        "fixmedins_code": strings(w.inst_code), "fixmedins_name": strings(w.inst_name),
        "fixmedins_type": strings(np.where(w.inst_cat == PHARMACY, "2", "1")), "hosp_lv": strings(w.inst_lv),
        "medins_natu": strings(w.inst_natu), "admdvs": strings(dcode[w.inst_district]),
        "aprv_bed_cnt": pa.array(w.inst_beds.astype(np.int64)), "lnt": pa.array(w.inst_lnt),
        "lat": pa.array(w.inst_lat),
    })
    dept_codes = np.asarray([d.code for d in N.DEPTS] + [""])
    dept_names = np.asarray([d.name for d in N.DEPTS] + ["药剂科"])
    put("prac_info", {
        "prac_psn_code": strings(w.prac_code), "prac_psn_name": strings(w.prac_name),
        "prac_psn_type": strings(w.prac_type), "fixmedins_code": strings(w.inst_code[w.prac_inst]),
        "dept_code": strings(dept_codes[w.prac_dept]), "dept_name": strings(dept_names[w.prac_dept]),
    })
    psn_no = strings(w.psn_no)
    insuplc = strings(w.insuplc)
    put("psn_info", {
        "psn_no": psn_no, "psn_name": strings(w.psn_name), "gend": strings(w.gend),
        "brdy": dates(w.brdy_days), "certno": strings(w.certno), "insutype": strings(w.insutype),
        "insuplc_admdvs": insuplc, "mob": strings(w.mob), "live_addr": strings(w.addr),
        "live_admdvs": strings(dcode[w.district]), "emp_name": strings(w.emp_name),
        "death_date": pa.array((w.death_day + start_days).astype(np.int32), pa.int32(),
                               mask=w.death_day < 0).cast(pa.date32()),
    })
    cat = N.CATALOGUE
    item_code = strings(w.item_code)
    item_name = strings(np.asarray([c.name for c in cat]))
    item_type = strings(pools.item_list_type)
    put("hilist", {
        "hilist_code": item_code, "hilist_name": item_name, "list_type": item_type,
        "pric_uplmt_amt": decimal_from_float(pools.item_ceiling),
        "max_days_per_fill": pa.array(pools.item_max_days.astype(np.int64), mask=pools.item_list_type != "101"),
        "key_drug_flag": strings(np.where(pools.item_key, "1", "0")),
    })
    inst_code = strings(w.inst_code)
    prac_code = strings(np.r_[w.prac_code, [""]])  # index -1 -> ""
    opter_code = strings(np.r_[w.opter_code, [""]])
    diag_codes = strings(np.asarray([d.code for d in N.DIAGNOSES] + [""]))
    diag_names = strings(np.asarray([d.name for d in N.DIAGNOSES] + [""]))
    depts = strings(dept_codes)
    dg = np.where(v["diag"] >= 0, v["diag"], len(N.DIAGNOSES))
    dept_i = np.where(v["dept"] >= 0, v["dept"], len(N.DEPTS))
    prac_i = np.where(v["prac"] >= 0, v["prac"], len(w.prac_code))
    vali = strings(np.asarray(["1", "0"]))
    vali_i = invalid.astype(np.int64)
    cert = strings(np.asarray(["01", "02", "03"]))
    psn = v["psn"].astype(np.int64)
    put("mdtrt", {
        "mdtrt_id": mdtrt_id, "psn_no": take(psn_no, psn), "fixmedins_code": take(inst_code, v["inst"]),
        "med_type": take(strings(np.asarray(MED_CODES)), v["med"]), "begntime": timestamps(v["begn"], epoch),
        "endtime": timestamps(v["endt"], epoch), "mdtrt_cert_type": take(cert, v["cert"]),
        "atddr_no": take(prac_code, prac_i), "dept_code": take(depts, dept_i),
        "dise_codg": take(diag_codes, dg), "dise_name": take(diag_names, dg),
        "insuplc_admdvs": take(insuplc, psn),
        "opter_id": take(opter_code, np.where(v["opter"] >= 0, v["opter"], len(w.opter_code))),
        "vali_flag": take(vali, vali_i),
    })
    report("writing settlements and fee lines / 写出结算与明细", 0.75)
    put("setl", {
        "setl_id": setl_id, "mdtrt_id": take(mdtrt_id, s_visit), "psn_no": take(psn_no, psn[s_visit]),
        "fixmedins_code": take(inst_code, v["inst"][s_visit]), "setl_time": timestamps(s_time, epoch),
        "medfee_sumamt": money(sign * total[s_visit]), "hifp_pay": money(sign * split["hifp"][s_visit]),
        "fund_pay_sumamt": money(sign * split["fund"][s_visit]), "acct_pay": money(sign * split["acct"][s_visit]),
        "psn_cash_pay": money(sign * split["cash"][s_visit]),
        "mdtrt_cert_type": take(cert, v["cert"][s_visit]),
        "refd_setl_flag": take(strings(np.asarray(["0", "1"])), s_refund.astype(np.int64)),
        "vali_flag": take(vali, vali_i[s_visit]),
    })
    lv = lines["visit"]
    put("fee_list", {
        "feedetl_sn": feedetl_sn, "mdtrt_id": take(mdtrt_id, lv), "psn_no": take(psn_no, psn[lv]),
        "setl_id": take(setl_id, orig_setl_pos[lv]), "fee_ocur_time": timestamps(lines["time"], epoch),
        "hilist_code": take(item_code, lines["item"]), "hilist_name": take(item_name, lines["item"]),
        "list_type": take(item_type, lines["item"]), "cnt": pa.array(lines["cnt"]),
        "pric": decimal_from_float(lines["pric"]), "det_item_fee_sumamt": money(lines["cents"]),
        "bilg_dr_codg": take(prac_code, np.where(lines["prac"] >= 0, lines["prac"], len(w.prac_code))),
        "bilg_dept_codg": take(depts, dept_i[lv]), "prd_days": pa.array(lines["days"], from_pandas=True),
        "vali_flag": take(vali, vali_i[lv]),
    })
    report("pharmacy stock / 药店进销存", 0.9)
    inv = _pharmacy_inventory(rng, w, v, lines, invalid, planted, days)
    put("phar_inv", {
        "fixmedins_code": take(inst_code, inv["inst"]), "hilist_code": take(item_code, inv["item"]),
        "inv_data_type": strings(inv["type"]), "cnt": pa.array(inv["cnt"]),
        "occur_time": timestamps(inv["time"], epoch), "spler_name": strings(inv["spler"]),
    })

    report("truth / 真值", 0.97)
    summary = CitySummary(out_dir=out_dir, persons=persons, seed=seed, fmt=fmt, counts=counts, files=files)
    truth = _truth(w, v, mdtrt_id, planted, seed, persons, start, days, counts)
    (out_dir / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    files.append(out_dir / "truth.json")
    for s in truth["schemes"]:
        summary.schemes[s["kind"]] = summary.schemes.get(s["kind"], 0) + 1
    for s in truth["lookalikes"]:
        summary.lookalikes[s["kind"]] = summary.lookalikes.get(s["kind"], 0) + 1
    summary.seconds = time.perf_counter() - t0
    report("done / 完成", 1.0)
    log.info("generated city of %d persons in %.1f s: %s", persons, summary.seconds, counts)
    return summary


def _pharmacy_inventory(rng: np.random.Generator, w: World, v: dict[str, np.ndarray], lines: dict[str, np.ndarray],
                        invalid: np.ndarray, planted: PlantResult, days: int) -> dict[str, np.ndarray]:
    """Daily sales (4) from the pharmacy fee lines and monthly purchases (3) covering them.

    Legitimate pharmacies buy at least what they sell; the (pharmacy, drug) pairs in `planted.short_supply`
    bought only a fraction of what they sold (drugs recycled off the books).
    """
    lv = lines["visit"]
    sel = (v["med"][lv] == M_PHARM) & ~invalid[lv]
    inst = v["inst"][lv][sel].astype(np.int64)
    item = lines["item"][sel].astype(np.int64)
    day = lines["time"][sel] // DAY
    cnt = lines["cnt"][sel]
    n_items = len(w.item_code)
    key = (inst * n_items + item) * (days + 60) + day
    uniq, inv_idx = np.unique(key, return_inverse=True)
    sales = np.bincount(inv_idx, weights=cnt)
    s_day = uniq % (days + 60)
    s_pair = uniq // (days + 60)
    month = np.minimum(s_day // 30, (days - 1) // 30)
    mkey = s_pair * 20 + month
    muniq, minv = np.unique(mkey, return_inverse=True)
    msales = np.bincount(minv, weights=sales)
    m_pair = muniq // 20
    m_month = muniq % 20
    pair_uniq, pair_idx = np.unique(m_pair, return_inverse=True)
    factor = rng.uniform(1.05, 1.3, len(pair_uniq))
    for (p_inst, p_item), f in planted.short_supply.items():
        pos = np.searchsorted(pair_uniq, p_inst * n_items + p_item)
        if pos < len(pair_uniq) and pair_uniq[pos] == p_inst * n_items + p_item:
            factor[pos] = f
    bought = np.ceil(msales * factor[pair_idx] + np.where(factor[pair_idx] >= 1, rng.integers(0, 6, len(msales)), 0))
    bought = np.maximum(bought, 0)
    keep = bought > 0
    spl = np.asarray(N.SUPPLIERS)
    p_time = (m_month * 30 + rng.integers(0, 3, len(m_month))) * DAY + rng.integers(9 * 3600, 16 * 3600, len(m_month))
    p_time = np.maximum(p_time - 2 * DAY, 9 * 3600)
    s_time = s_day * DAY + 21 * 3600 + 30 * 60
    out = {
        "inst": np.r_[(m_pair // n_items)[keep], s_pair // n_items],
        "item": np.r_[(m_pair % n_items)[keep], s_pair % n_items],
        "type": np.r_[np.full(keep.sum(), "3"), np.full(len(s_pair), "4")],
        "cnt": np.r_[bought[keep], sales],
        "time": np.r_[p_time[keep], s_time],
        "spler": np.r_[spl[(m_pair[keep] // n_items) % len(spl)], np.full(len(s_pair), "")],
    }
    order = np.lexsort((out["type"], out["time"], out["item"], out["inst"]))
    return {k: a[order] for k, a in out.items()}


def _truth(w: World, v: dict[str, np.ndarray], mdtrt_id: pa.Array, planted: PlantResult, seed: int, persons: int,
           start: date, days: int, counts: dict[str, int]) -> dict:
    """truth.json: planted schemes (with evidence mdtrt_ids) and legitimate look-alikes."""
    tagged = np.flatnonzero(v["tag"] >= 0)
    order = tagged[np.argsort(v["tag"][tagged], kind="stable")]
    tags_sorted = v["tag"][order]
    ids = take(mdtrt_id, order).to_pylist()
    schemes = []
    for i, s in enumerate(planted.schemes):
        lo, hi = np.searchsorted(tags_sorted, i, "left"), np.searchsorted(tags_sorted, i, "right")
        evidence = sorted(ids[lo:hi])
        schemes.append({
            "scheme_id": s.scheme_id, "kind": s.kind,
            "persons": sorted({str(w.psn_no[p]) for p in s.persons}),
            "practitioners": sorted({str(w.prac_code[p]) for p in s.practitioners}),
            "institutions": sorted({str(w.inst_code[p]) for p in s.institutions}),
            "evidence": evidence, "description_en": s.description_en, "description_zh": s.description_zh,
            "params": s.params,
        })
    lookalikes = []
    for la in planted.lookalikes:
        rec = {"kind": la.kind, "persons": sorted({str(w.psn_no[p]) for p in la.persons}),
               "institutions": sorted({str(w.inst_code[p]) for p in la.institutions}),
               "description_en": la.description_en}
        rec.update(la.extra)
        lookalikes.append(rec)
    return {"generator": "fraudnet.generate", "seed": seed, "persons": persons, "start": start.isoformat(),
            "days": days, "counts": counts, "schemes": schemes, "lookalikes": lookalikes}



def _without_impossible_background(v: dict[str, np.ndarray], background: np.ndarray,
                                   w: World) -> dict[str, np.ndarray]:
    """Drop ordinary (`background`) visits that planted ones — schemes and look-alikes — made impossible (the same
    person at two institutions within hours, or in two stays at once): every impossible event is one truth.json
    records."""
    movable = background & (v["tag"] < 0) & ~v["protect"]
    death = w.death_day[v["psn"]]
    untagged = (v["tag"] < 0) & ~v["protect"]  # nobody's own care (nor a look-alike's) goes on after death
    keep = ~(untagged & (death >= 0) & (v["begn"] // DAY > death))
    for _ in range(20):
        alive = np.flatnonzero(keep)
        a, b = impossible_pairs(v["psn"][alive], v["inst"][alive], v["begn"][alive], v["endt"][alive],
                                v["med"][alive] == M_IN)
        a, b = alive[a], alive[b]
        drop = np.r_[b[movable[b]], a[movable[a] & ~movable[b]]]
        if not len(drop):
            break
        keep[drop] = False
    return {k: arr[keep] for k, arr in v.items()}
