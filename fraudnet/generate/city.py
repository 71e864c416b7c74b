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
    TableWriter,
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
# Visits per fee-line chunk (a city with more is generated a chunk at a time) and rows per written slice.
CHUNK_VISITS = 2_000_000
WRITE_ROWS = 1_000_000
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
    del order
    nv = len(v["psn"])

    # invalid records and refunds (never on planted evidence)
    eligible = np.flatnonzero(~v["protect"] & (v["tag"] < 0))
    flags = rng.random(len(eligible))
    invalid = np.zeros(nv, dtype=bool)
    invalid[eligible[flags < INVALID_RATE]] = True
    refunded = np.zeros(nv, dtype=bool)
    refunded[eligible[(flags >= INVALID_RATE) & (flags < INVALID_RATE + REFUND_RATE)]] = True

    # Visits are sorted by time: a chunk of them is a stretch of the period. A city with more visits than
    # CHUNK_VISITS gets its fee lines a chunk at a time (each written out and dropped before the next), so memory
    # is bounded by a chunk; smaller cities are made in one piece, exactly as before.
    chunked = nv > CHUNK_VISITS
    visit_yymmdd = _yymmdd(v["begn"] // DAY + start_days) * 10**12
    if not chunked:
        report("fee lines / 费用明细", 0.4)
        lines = fee_lines(rng, w, pools, v)
        total = np.bincount(lines["visit"], weights=lines["cents"], minlength=nv).astype(np.int64)
        split = settlements(rng, w, v, total)
    report("identifiers / 编号", 0.55)
    # mdtrt_id: "31" + yymmdd of the visit + 12-digit serial (ascending with time, like a platform sequence)
    mdtrt_num = visit_yymmdd + rng.integers(10**6, 10**7) + np.arange(nv)
    del visit_yymmdd
    # settlements: one per visit at its end, plus refunds later with negative amounts
    setl_time = np.where(v["med"] == M_IN, v["endt"], v["endt"] + rng.integers(0, 600, nv))
    ref_idx = np.flatnonzero(refunded)
    ref_time = setl_time[ref_idx] + rng.integers(600, 3 * DAY, len(ref_idx))
    s_visit = np.r_[np.arange(nv), ref_idx]
    s_time = np.r_[setl_time, ref_time]
    del setl_time, ref_time
    s_refund = np.r_[np.zeros(nv, dtype=bool), np.ones(len(ref_idx), dtype=bool)]
    s_order = np.lexsort((s_refund, s_visit, s_time))
    s_visit, s_time, s_refund = s_visit[s_order], s_time[s_order], s_refund[s_order]
    del s_order
    ns = len(s_visit)
    setl_base = rng.integers(10**7, 10**8)
    sign = np.where(s_refund, -1, 1)
    # the original settlement of each visit (fee lines point at it)
    orig_setl_pos = np.empty(nv, dtype=np.int64)
    orig_setl_pos[s_visit[~s_refund]] = np.flatnonzero(~s_refund)
    feedetl_base = rng.integers(10**8, 10**9)

    files: list[Path] = []
    counts: dict[str, int] = {}
    dcode = np.asarray([d.admdvs for d in N.DISTRICTS])
    psn_no = strings(w.psn_no)
    insuplc = strings(w.insuplc)
    inst_code = strings(w.inst_code)
    prac_code = strings(np.r_[w.prac_code, [""]])  # index -1 -> ""
    opter_code = strings(np.r_[w.opter_code, [""]])
    dept_codes = np.asarray([d.code for d in N.DEPTS] + [""])
    dept_names = np.asarray([d.name for d in N.DEPTS] + ["药剂科"])
    depts = strings(dept_codes)
    cat = N.CATALOGUE
    item_code = strings(w.item_code)
    item_name = strings(np.asarray([c.name for c in cat]))
    item_type = strings(pools.item_list_type)
    vali = strings(np.asarray(["1", "0"]))
    vali_i = invalid.astype(np.int64)
    cert = strings(np.asarray(["01", "02", "03"]))
    psn = v["psn"].astype(np.int64)
    dept_i = np.where(v["dept"] >= 0, v["dept"], len(N.DEPTS))
    fee_writer = TableWriter(out_dir, "fee_list", fmt)

    def write_fee_lines(part: dict[str, np.ndarray]) -> None:
        """Write fee lines (global visit positions) in slices of WRITE_ROWS, numbering them on."""
        for lo in range(0, len(part["visit"]), WRITE_ROWS):
            sl = slice(lo, lo + WRITE_ROWS)
            lv = part["visit"][sl]
            item = part["item"][sl]
            prac = part["prac"][sl]
            fee_writer.write({
                "feedetl_sn": id_strings("", feedetl_base + fee_writer.rows + np.arange(len(lv)), 20),
                "mdtrt_id": id_strings("31", mdtrt_num[lv], 18), "psn_no": take(psn_no, psn[lv]),
                "setl_id": id_strings("3101", setl_base + orig_setl_pos[lv], 16),
                "fee_ocur_time": timestamps(part["time"][sl], epoch),
                "hilist_code": take(item_code, item), "hilist_name": take(item_name, item),
                "list_type": take(item_type, item), "cnt": pa.array(part["cnt"][sl]),
                "pric": decimal_from_float(part["pric"][sl]), "det_item_fee_sumamt": money(part["cents"][sl]),
                "bilg_dr_codg": take(prac_code, np.where(prac >= 0, prac, len(w.prac_code))),
                "bilg_dept_codg": take(depts, dept_i[lv]), "prd_days": pa.array(part["days"][sl], from_pandas=True),
                "vali_flag": take(vali, vali_i[lv]),
            })

    report("writing fee lines / 写出费用明细", 0.6)
    if not chunked:
        inv = _pharmacy_inventory(rng, w, v, lines, invalid, planted, days)
        write_fee_lines(lines)
        del lines
    else:
        total = np.zeros(nv, dtype=np.int64)
        pharm_parts: list[dict[str, np.ndarray]] = []
        seeds = rng.integers(0, 2**63 - 1, size=(nv + CHUNK_VISITS - 1) // CHUNK_VISITS)
        for k, lo in enumerate(range(0, nv, CHUNK_VISITS)):
            hi = min(nv, lo + CHUNK_VISITS)
            report(f"fee lines / 费用明细 {hi:,}/{nv:,}", 0.4 + 0.35 * hi / nv)
            part = fee_lines(np.random.default_rng(seeds[k]), w, pools, {key: a[lo:hi] for key, a in v.items()})
            total[lo:hi] = np.bincount(part["visit"], weights=part["cents"], minlength=hi - lo).astype(np.int64)
            part["visit"] = part["visit"] + lo
            sel = (v["med"][part["visit"]] == M_PHARM) & ~invalid[part["visit"]]
            pharm_parts.append({key: part[key][sel] for key in ("visit", "item", "time", "cnt")})
            write_fee_lines(part)
            del part
        split = settlements(rng, w, v, total)
        pharm = {key: np.concatenate([p[key] for p in pharm_parts]) for key in ("visit", "item", "time", "cnt")}
        del pharm_parts
        inv = _pharmacy_inventory(rng, w, v, pharm, invalid, planted, days)
        del pharm
    files.append(fee_writer.close())
    counts["fee_list"] = fee_writer.rows

    report("writing tables / 写出数据表", 0.8)

    def put(name: str, cols: dict[str, pa.Array]) -> None:
        files.append(write_table(out_dir, name, cols, fmt))
        counts[name] = len(next(iter(cols.values())))

    def put_rows(name: str, n: int, make: Callable[[slice], dict[str, pa.Array]]) -> None:
        writer = TableWriter(out_dir, name, fmt)
        for lo in range(0, max(n, 1), WRITE_ROWS):
            writer.write(make(slice(lo, min(n, lo + WRITE_ROWS))))
        files.append(writer.close())
        counts[name] = writer.rows

    put("medins_info", {
        "fixmedins_code": strings(w.inst_code), "fixmedins_name": strings(w.inst_name),
        "fixmedins_type": strings(np.where(w.inst_cat == PHARMACY, "2", "1")), "hosp_lv": strings(w.inst_lv),
        "medins_natu": strings(w.inst_natu), "admdvs": strings(dcode[w.inst_district]),
        "aprv_bed_cnt": pa.array(w.inst_beds.astype(np.int64)), "lnt": pa.array(w.inst_lnt),
        "lat": pa.array(w.inst_lat),
    })
    put("prac_info", {
        "prac_psn_code": strings(w.prac_code), "prac_psn_name": strings(w.prac_name),
        "prac_psn_type": strings(w.prac_type), "fixmedins_code": strings(w.inst_code[w.prac_inst]),
        "dept_code": strings(dept_codes[w.prac_dept]), "dept_name": strings(dept_names[w.prac_dept]),
    })
    put("psn_info", {
        "psn_no": psn_no, "psn_name": strings(w.psn_name), "gend": strings(w.gend),
        "brdy": dates(w.brdy_days), "certno": strings(w.certno), "insutype": strings(w.insutype),
        "insuplc_admdvs": insuplc, "mob": strings(w.mob), "live_addr": strings(w.addr),
        "live_admdvs": strings(dcode[w.district]), "emp_name": strings(w.emp_name),
        "death_date": pa.array((w.death_day + start_days).astype(np.int32), pa.int32(),
                               mask=w.death_day < 0).cast(pa.date32()),
    })
    put("hilist", {
        "hilist_code": item_code, "hilist_name": item_name, "list_type": item_type,
        "pric_uplmt_amt": decimal_from_float(pools.item_ceiling),
        "max_days_per_fill": pa.array(pools.item_max_days.astype(np.int64), mask=pools.item_list_type != "101"),
        "key_drug_flag": strings(np.where(pools.item_key, "1", "0")),
    })
    diag_codes = strings(np.asarray([d.code for d in N.DIAGNOSES] + [""]))
    diag_names = strings(np.asarray([d.name for d in N.DIAGNOSES] + [""]))
    med_codes = strings(np.asarray(MED_CODES))

    def mdtrt_rows(sl: slice) -> dict[str, pa.Array]:
        dg = np.where(v["diag"][sl] >= 0, v["diag"][sl], len(N.DIAGNOSES))
        prac_i = np.where(v["prac"][sl] >= 0, v["prac"][sl], len(w.prac_code))
        return {
            "mdtrt_id": id_strings("31", mdtrt_num[sl], 18), "psn_no": take(psn_no, psn[sl]),
            "fixmedins_code": take(inst_code, v["inst"][sl]), "med_type": take(med_codes, v["med"][sl]),
            "begntime": timestamps(v["begn"][sl], epoch), "endtime": timestamps(v["endt"][sl], epoch),
            "mdtrt_cert_type": take(cert, v["cert"][sl]), "atddr_no": take(prac_code, prac_i),
            "dept_code": take(depts, dept_i[sl]), "dise_codg": take(diag_codes, dg), "dise_name": take(diag_names, dg),
            "insuplc_admdvs": take(insuplc, psn[sl]),
            "opter_id": take(opter_code, np.where(v["opter"][sl] >= 0, v["opter"][sl], len(w.opter_code))),
            "vali_flag": take(vali, vali_i[sl]),
        }

    put_rows("mdtrt", nv, mdtrt_rows)
    report("writing settlements / 写出结算", 0.85)
    refund_flag = strings(np.asarray(["0", "1"]))

    def setl_rows(sl: slice) -> dict[str, pa.Array]:
        sv = s_visit[sl]
        sg = sign[sl]
        return {
            "setl_id": id_strings("3101", setl_base + np.arange(sl.start, sl.stop), 16),
            "mdtrt_id": id_strings("31", mdtrt_num[sv], 18), "psn_no": take(psn_no, psn[sv]),
            "fixmedins_code": take(inst_code, v["inst"][sv]), "setl_time": timestamps(s_time[sl], epoch),
            "medfee_sumamt": money(sg * total[sv]), "hifp_pay": money(sg * split["hifp"][sv]),
            "fund_pay_sumamt": money(sg * split["fund"][sv]), "acct_pay": money(sg * split["acct"][sv]),
            "psn_cash_pay": money(sg * split["cash"][sv]),
            "mdtrt_cert_type": take(cert, v["cert"][sv]),
            "refd_setl_flag": take(refund_flag, s_refund[sl].astype(np.int64)),
            "vali_flag": take(vali, vali_i[sv]),
        }

    put_rows("setl", ns, setl_rows)
    report("pharmacy stock / 药店进销存", 0.9)
    put("phar_inv", {
        "fixmedins_code": take(inst_code, inv["inst"]), "hilist_code": take(item_code, inv["item"]),
        "inv_data_type": strings(inv["type"]), "cnt": pa.array(inv["cnt"]),
        "occur_time": timestamps(inv["time"], epoch), "spler_name": strings(inv["spler"]),
    })
    counts = {name: counts[name] for name in TABLE_FILES}
    files.sort(key=lambda f: TABLE_FILES.index(f.stem))

    report("truth / 真值", 0.97)
    summary = CitySummary(out_dir=out_dir, persons=persons, seed=seed, fmt=fmt, counts=counts, files=files)
    truth = _truth(w, v, mdtrt_num, planted, seed, persons, start, days, counts)
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


def _truth(w: World, v: dict[str, np.ndarray], mdtrt_num: np.ndarray, planted: PlantResult, seed: int, persons: int,
           start: date, days: int, counts: dict[str, int]) -> dict:
    """truth.json: planted schemes (with evidence mdtrt_ids) and legitimate look-alikes."""
    tagged = np.flatnonzero(v["tag"] >= 0)
    order = tagged[np.argsort(v["tag"][tagged], kind="stable")]
    tags_sorted = v["tag"][order]
    ids = id_strings("31", mdtrt_num[order], 18).to_pylist()
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
