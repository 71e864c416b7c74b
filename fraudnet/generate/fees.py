"""Fee detail lines (费用明细) for every visit and the settlements (结算) they add up to, vectorised."""

from __future__ import annotations

import numpy as np

from fraudnet.generate.visits import DAY, Pools
from fraudnet.generate.world import CLINIC, COMMUNITY, M_CHRONIC, M_ER, M_IN, M_PHARM, PRIVATE, SECONDARY, World

__all__ = ["fee_lines", "settlements"]


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-owner counts: the owner index of every element and its position within the owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    return owner, np.arange(len(owner)) - start[owner]


def _prices(rng: np.random.Generator, w: World, p: Pools, item: np.ndarray, inst: np.ndarray,
            over: np.ndarray) -> np.ndarray:
    """Unit price per line: services at the ceiling in public institutions, drugs a little under it."""
    k = len(item)
    ceiling = p.item_ceiling[item]
    is_drug = p.item_list_type[item] == "101"
    public = w.inst_natu[inst] == "1"
    factor = np.where(is_drug, rng.uniform(0.82, 0.99, k), np.where(public, 1.0, rng.uniform(0.9, 1.0, k)))
    at_ceiling = rng.random(k) < np.where(is_drug, 0.03, 0.3)
    factor = np.where(at_ceiling, 1.0, factor)
    factor = np.where(over, rng.uniform(1.12, 1.6, k), factor)
    return np.round(ceiling * factor, 2)


def fee_lines(rng: np.random.Generator, w: World, p: Pools, v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All fee lines of the (already ordered) visits: item, count, price, amount (cents), time, prescriber."""
    nv = len(v["psn"])
    inpatient = v["med"] == M_IN
    out_idx = np.flatnonzero(~inpatient)
    in_idx = np.flatnonzero(inpatient)
    visit_item = w.item_key_index["visit"]
    visit_er = w.item_key_index["visit_er"]
    parts = []

    # --- outpatient, emergency, chronic and pharmacy visits ---
    vo = {k: a[out_idx] for k, a in v.items()}
    has_fee = (vo["med"] != M_PHARM).astype(np.int64)
    fix = np.stack([vo["fix1"], vo["fix2"], vo["fix3"]], axis=1)
    fix_days = np.stack([vo["fix1_days"], vo["fix2_days"], vo["fix3_days"]], axis=1)
    n_fix = (fix >= 0).sum(axis=1)
    n_rand = vo["n_rand"].astype(np.int64)
    n_exam = vo["n_exam"].astype(np.int64)
    n_extra = (vo["extra_item"] >= 0).astype(np.int64)
    total = has_fee + n_fix + n_rand + n_exam + n_extra
    owner, j = _segments(total)
    item = np.zeros(len(owner), dtype=np.int64)
    days = np.full(len(owner), np.nan)
    cnt = np.ones(len(owner))
    b1 = has_fee[owner]
    b2 = b1 + n_fix[owner]
    b3 = b2 + n_rand[owner]
    b4 = b3 + n_exam[owner]
    role_fee = j < b1
    role_fix = (j >= b1) & (j < b2)
    role_rand = (j >= b2) & (j < b3)
    role_exam = (j >= b3) & (j < b4)
    role_extra = j >= b4
    item[role_fee] = np.where(vo["med"][owner[role_fee]] == M_ER, visit_er, visit_item)
    fk = (j - b1)[role_fix]
    item[role_fix] = fix[owner[role_fix], fk]
    fdays = fix_days[owner[role_fix], fk].astype(float)
    bcnt = vo["basket_cnt"][owner[role_fix]]
    pack = p.item_pack[item[role_fix]]
    cnt[role_fix] = np.where(bcnt > 0, bcnt, np.ceil(fdays / pack))
    days[role_fix] = fdays
    r0 = rng.integers(0, 1000, len(out_idx))
    pool = np.maximum(vo["pool"], 0)
    o = owner[role_rand]
    rk = (j - b2)[role_rand]
    item[role_rand] = p.drug_items[p.drug_start[pool[o]] + (r0[o] + rk) % np.maximum(p.drug_len[pool[o]], 1)]
    it = item[role_rand]
    target = np.where(p.item_chronic[it], rng.integers(14, 31, len(it)), rng.integers(3, 8, len(it)))
    target = np.minimum(target, p.item_max_days[it])
    days[role_rand] = target
    cnt[role_rand] = np.ceil(target / p.item_pack[it])
    o = owner[role_exam]
    ek = (j - b3)[role_exam]
    dg = np.maximum(vo["diag"][o], 0)
    item[role_exam] = p.svc_items[p.svc_start[dg] + (r0[o] + ek) % np.maximum(p.svc_len[dg], 1)]
    item[role_extra] = vo["extra_item"][owner[role_extra]]
    is_drug = p.item_list_type[item] == "101"
    oq = vo["overqty"][owner] & is_drug
    if oq.any():
        over_days = np.round(p.item_max_days[item[oq]] * rng.uniform(2.0, 4.0, oq.sum()))
        days[oq] = over_days
        cnt[oq] = np.ceil(over_days / p.item_pack[item[oq]])
    pharm = vo["med"][owner] == M_PHARM
    over = vo["overprice"][owner] & np.where(pharm, is_drug, ~is_drug)
    offs = np.where(role_fee | pharm, 0, rng.integers(60, 1800, len(owner)))
    t = vo["begn"][owner] + offs
    prescriber = np.where(role_fix & (vo["prescriber"][owner] >= 0), vo["prescriber"][owner], vo["prac"][owner])
    parts.append({"visit": out_idx[owner], "item": item, "cnt": cnt, "days": days, "time": t,
                  "over": over, "prac": prescriber})

    # --- inpatient stays: daily bed, nursing, drugs (and infusion); admission-day exams and consumables ---
    vi = {k: a[in_idx] for k, a in v.items()}
    los = vi["los"].astype(np.int64)
    dg = np.maximum(vi["diag"], 0)
    pool = np.maximum(vi["pool"], 0)
    n_inday = np.minimum(vi["n_inday"].astype(np.int64), np.maximum(p.drug_len[pool], 1))
    iv = (rng.random(len(in_idx)) < 0.5).astype(np.int64)
    per_day = 2 + n_inday + iv
    day_owner, d = _segments(los)
    line_owner, jj = _segments(per_day[day_owner])
    o = day_owner[line_owner]
    dd = d[line_owner]
    item = np.empty(len(o), dtype=np.int64)
    bed, nursing, ivi = w.item_key_index["bed"], w.item_key_index["nursing"], w.item_key_index["iv"]
    item[jj == 0] = bed
    item[jj == 1] = nursing
    drug = (jj >= 2) & (jj < 2 + n_inday[o])
    r0 = rng.integers(0, 1000, len(in_idx))
    od = o[drug]
    item[drug] = p.drug_items[p.drug_start[pool[od]] + (r0[od] + dd[drug] + jj[drug] - 2)
                              % np.maximum(p.drug_len[pool[od]], 1)]
    item[jj >= 2 + n_inday[o]] = ivi
    hang = (dd >= vi["hang_from"][o]) & (dd < vi["hang_to"][o]) & (jj > 0)
    keep = ~hang
    o, dd, item, jj = o[keep], dd[keep], item[keep], jj[keep]
    admit_day = vi["begn"] // DAY
    t = (admit_day[o] + dd) * DAY + rng.integers(7 * 3600, 11 * 3600, len(o))
    t = np.where(dd == 0, vi["begn"][o] + rng.integers(600, 7200, len(o)), t)
    is_drug = p.item_list_type[item] == "101"
    cnt = np.where(is_drug, rng.integers(1, 4, len(o)), 1).astype(float)
    days = np.where(is_drug, 1.0, np.nan)
    over = vi["overprice"][o] & ((jj == 0) | (jj == 1))
    parts.append({"visit": in_idx[o], "item": item, "cnt": cnt, "days": days, "time": t, "over": over,
                  "prac": vi["prac"][o]})
    # admission-day extras: the diagnosis' exams/procedures, consumables, an extra item
    n_svc = p.svc_len[dg] + 2 + (vi["extra_item"] >= 0)
    eo, ek = _segments(n_svc)
    item = np.empty(len(eo), dtype=np.int64)
    svc = ek < p.svc_len[dg][eo]
    item[svc] = p.svc_items[p.svc_start[dg[eo[svc]]] + ek[svc]]
    cons = (ek >= p.svc_len[dg][eo]) & (ek < p.svc_len[dg][eo] + 2)
    item[cons] = np.where(ek[cons] == p.svc_len[dg][eo[cons]], w.item_key_index["syringe"],
                          w.item_key_index["infus"])
    extra = ek >= p.svc_len[dg][eo] + 2
    item[extra] = vi["extra_item"][eo[extra]]
    cnt = np.where(cons, rng.integers(2, 12, len(eo)), 1).astype(float)
    t = vi["begn"][eo] + rng.integers(900, 6 * 3600, len(eo))
    parts.append({"visit": in_idx[eo], "item": item, "cnt": cnt, "days": np.full(len(eo), np.nan), "time": t,
                  "over": np.zeros(len(eo), dtype=bool), "prac": vi["prac"][eo]})

    lines = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    # duplicate charges: one line of each flagged visit billed twice at the same time
    dup_visits = np.flatnonzero(v["dup"])
    if len(dup_visits):
        order = np.argsort(lines["visit"], kind="stable")
        vis_sorted = lines["visit"][order]
        first = np.searchsorted(vis_sorted, dup_visits, side="left")
        count = np.searchsorted(vis_sorted, dup_visits, side="right") - first
        pick = order[first + np.floor(rng.random(len(dup_visits)) * count).astype(np.int64)]
        for k in lines:
            lines[k] = np.concatenate([lines[k], lines[k][pick]])
    order = np.lexsort((lines["time"], lines["visit"]))
    lines = {k: a[order] for k, a in lines.items()}
    lines["pric"] = _prices(rng, w, p, lines["item"], v["inst"][lines["visit"]], lines["over"])
    lines["cents"] = np.round(lines["cnt"] * lines["pric"] * 100).astype(np.int64)
    if nv and lines["visit"].max() >= nv:
        raise AssertionError("fee line refers to a missing visit")
    return lines


def settlements(rng: np.random.Generator, w: World, v: dict[str, np.ndarray], total_cents: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Split each visit's total into pooled fund, other fund, personal account and cash (all in cents)."""
    n = len(total_cents)
    med = v["med"]
    cat = w.inst_cat[v["inst"]]
    employee = w.insutype[v["psn"]] == "310"
    total = total_cents.astype(np.int64)
    ratio = np.zeros(n)
    deductible = np.zeros(n)
    inpatient = med == M_IN
    lvl = np.select([cat == SECONDARY, (cat == COMMUNITY) | (cat == CLINIC), cat == PRIVATE], [0.88, 0.92, 0.8], 0.85)
    ratio = np.where(inpatient, np.where(employee, lvl, lvl - 0.18), ratio)
    deductible = np.where(inpatient, np.select([cat == SECONDARY, cat == PRIVATE, cat == COMMUNITY], [80000, 60000,
                                                                                                      30000], 120000),
                          deductible)
    out = (med != M_IN) & (med != M_PHARM)
    ratio = np.where(out, np.where(employee, np.where(cat == COMMUNITY, 0.7, 0.6), 0.5), ratio)
    deductible = np.where(out & employee, 0, deductible)
    ratio = np.where(med == M_CHRONIC, np.where(employee, 0.8, 0.65), ratio)
    ratio = np.where(med == M_ER, np.where(employee, 0.6, 0.5), ratio)
    ratio = np.where(med == M_PHARM, np.where(employee, 0.5, 0.4), ratio)
    hifp = np.floor(np.maximum(total - deductible, 0) * ratio).astype(np.int64)
    other = np.where(inpatient & employee & (rng.random(n) < 0.15), np.floor((total - hifp) * 0.3), 0).astype(np.int64)
    rest = total - hifp - other
    acct = np.where(employee, np.floor(rest * rng.uniform(0.3, 1.0, n)), 0).astype(np.int64)
    cash = rest - acct
    return {"hifp": hifp, "fund": hifp + other, "acct": acct, "cash": cash}
