"""Visits as columnar numpy batches, and the city's ordinary background of care (vectorised)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudnet.generate import names as N
from fraudnet.generate.world import (
    M_CHRONIC,
    M_ER,
    M_IN,
    M_OUT,
    M_PHARM,
    World,
    add_staff,
    distance_km,
)

__all__ = ["VisitTable", "VISIT_FIELDS", "Background", "background_visits", "Pools", "build_pools", "pick_in_group"]

DAY = 86400

# name -> (dtype, default). Visit-level fields plus the controls the fee generator reads.
VISIT_FIELDS: dict[str, tuple[str, object]] = {
    "psn": ("i4", -1), "inst": ("i4", -1), "med": ("i1", 0), "begn": ("i8", 0), "endt": ("i8", 0),
    "prac": ("i4", -1), "dept": ("i2", -1), "diag": ("i2", -1), "cert": ("i1", 0), "opter": ("i4", -1),
    "tag": ("i4", -1),  # planted scheme index, -1 background
    "protect": ("?", False),  # never refunded/invalidated (planted evidence)
    "los": ("i2", 0),  # inpatient days
    "fix1": ("i2", -1), "fix1_days": ("i2", 0), "fix2": ("i2", -1), "fix2_days": ("i2", 0),
    "fix3": ("i2", -1), "fix3_days": ("i2", 0),
    "prescriber": ("i4", -1),  # bilg_dr_codg for fixed drugs when not the attending practitioner
    "n_rand": ("i1", 0),  # random drugs from the pool
    "n_exam": ("i1", 0),  # exam/treatment services from the diagnosis
    "pool": ("i2", -1),  # drug pool (diagnosis index, or the pharmacy OTC pool)
    "overprice": ("?", False), "overqty": ("?", False), "dup": ("?", False),
    "hang_from": ("i2", 0), "hang_to": ("i2", 0),
    "extra_item": ("i2", -1),  # one extra service line (e.g. a sex-specific item)
    "n_inday": ("i1", 0),  # inpatient drugs per day
    "basket_cnt": ("i2", 0),  # fixed drug count override (identical baskets)
}


class VisitTable:
    """Append-only collection of visit batches (dicts of equal-length arrays) concatenated on demand."""

    def __init__(self) -> None:
        self.batches: list[dict[str, np.ndarray]] = []
        self.size = 0

    def add(self, n: int, **cols: object) -> np.ndarray:
        """Append n visits; unspecified fields take their defaults. Returns the new rows' positions."""
        batch: dict[str, np.ndarray] = {}
        for name, (dtype, default) in VISIT_FIELDS.items():
            value = cols.pop(name, default)
            arr = np.asarray(value)
            batch[name] = (np.full(n, arr, dtype=dtype) if arr.ndim == 0 else arr.astype(dtype, copy=False))
            if len(batch[name]) != n:
                raise ValueError(f"visit field {name}: {len(batch[name])} values for {n} visits")
        if cols:
            raise ValueError(f"unknown visit fields: {sorted(cols)}")
        self.batches.append(batch)
        positions = np.arange(self.size, self.size + n)
        self.size += n
        return positions

    def concat(self) -> dict[str, np.ndarray]:
        """All visits as one dict of arrays."""
        return {name: np.concatenate([b[name] for b in self.batches]) for name in VISIT_FIELDS}


@dataclass
class Pools:
    """Flattened item pools per drug pool and per diagnosis (services), for vectorised random picks."""

    drug_start: np.ndarray
    drug_len: np.ndarray
    drug_items: np.ndarray
    svc_start: np.ndarray
    svc_len: np.ndarray
    svc_items: np.ndarray
    otc_pool: int
    item_list_type: np.ndarray
    item_kind: np.ndarray
    item_ceiling: np.ndarray
    item_pack: np.ndarray
    item_chronic: np.ndarray
    item_key: np.ndarray
    item_max_days: np.ndarray


def build_pools(w: World) -> Pools:
    """Drug pools per diagnosis (+ one OTC pool for pharmacy purchases), service pools per diagnosis."""
    idx = w.item_key_index
    drug_lists = [[idx[k] for k in d.drugs] for d in N.DIAGNOSES]
    otc = [idx[it.key] for it in N.CATALOGUE if it.otc]
    drug_lists.append(otc)
    svc_lists = [[idx[k] for k in d.services] for d in N.DIAGNOSES] + [[]]

    def flat(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lens = np.array([len(x) for x in lists])
        return np.r_[0, np.cumsum(lens)[:-1]], lens, np.array([i for x in lists for i in x], dtype=np.int32)

    ds, dl, di = flat(drug_lists)
    ss, sl, si = flat(svc_lists)
    cat = N.CATALOGUE
    chronic = np.array([it.chronic for it in cat])
    return Pools(ds, dl, di, ss, sl, si, len(drug_lists) - 1,
                 np.array([it.list_type for it in cat]), np.array([it.kind for it in cat]),
                 np.array([it.ceiling for it in cat]), np.array([it.pack_days for it in cat]),
                 chronic, np.array([it.key_drug for it in cat]),
                 np.where(chronic, 30, 7))


def pick_in_group(rng: np.random.Generator, group_start: np.ndarray, group_len: np.ndarray, members: np.ndarray,
                  groups: np.ndarray) -> np.ndarray:
    """For each entry of `groups`, a uniformly random member of that group (-1 when the group is empty)."""
    length = group_len[groups]
    offs = np.floor(rng.random(len(groups)) * np.maximum(length, 1)).astype(np.int64)
    out = np.where(length > 0, members[np.minimum(group_start[groups] + offs, len(members) - 1)], -1)
    return out


def _hour_of_day(rng: np.random.Generator, n: int, profile: np.ndarray) -> np.ndarray:
    """Seconds within the day drawn from an hourly profile."""
    hours = rng.choice(24, n, p=profile / profile.sum())
    return hours * 3600 + rng.integers(0, 3600, n)


HOURS_OUT = np.array([0, 0, 0, 0, 0, 0, 0.2, 1.5, 9, 10, 9, 6, 2, 5, 7, 6, 4, 1.5, 0.5, 0.3, 0.2, 0, 0, 0], float)
HOURS_ER = np.array([2, 1.5, 1.2, 1, 1, 1.2, 1.5, 2.5, 4, 5, 5, 5, 4.5, 4.5, 5, 5, 5, 5, 5.5, 6, 5.5, 4.5, 3.5, 2.5],
                    float)
HOURS_PHARM = np.array([0, 0, 0, 0, 0, 0, 0.1, 1, 4, 7, 8, 7, 5, 5, 6, 6, 6, 6, 7, 7, 5, 2.5, 0.6, 0.1], float)
HOURS_ADMIT = np.array([0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.5, 1, 5, 8, 8, 6, 3, 5, 6, 5, 3, 1.5, 1.2, 1, 1, 0.8, 0.6,
                        0.5], float)


def _days(rng: np.random.Generator, n: int, days: int, start_weekday: int, weekend: float) -> np.ndarray:
    """Day offsets with fewer visits on weekends and a mild winter peak."""
    d = np.arange(days)
    wd = (start_weekday + d) % 7
    month = (d / 30.4).astype(int) % 12
    season = 1.0 + 0.15 * np.isin(month, [0, 1, 11]) - 0.05 * np.isin(month, [6, 7])
    w = np.where(wd >= 5, weekend, 1.0) * season
    return rng.choice(days, n, p=w / w.sum())


@dataclass
class Background:
    """What the background generation decided that the schemes and look-alikes build on."""

    chronic_persons: np.ndarray
    chronic_diag: np.ndarray
    chronic_drug: np.ndarray
    chronic_inst: np.ndarray
    chronic_prac: np.ndarray
    chronic_pharm: np.ndarray
    chronic_refills: np.ndarray  # bool: also refills at the pharmacy
    group_start: np.ndarray  # physicians grouped by inst*ndept + dept
    group_len: np.ndarray
    group_members: np.ndarray
    pharm_start: np.ndarray  # pharmacists grouped by institution
    pharm_len: np.ndarray
    pharm_members: np.ndarray
    cash_start: np.ndarray
    cash_len: np.ndarray
    cash_members: np.ndarray
    inst_choice_cum: dict[int, np.ndarray]  # per med code: cumulative choice matrix [district, inst]


def _choice_matrices(w: World) -> dict[int, np.ndarray]:
    """Cumulative probability of each institution per home district, for each med group."""
    d_lnt = np.array([d.lnt for d in N.DISTRICTS])
    d_lat = np.array([d.lat for d in N.DISTRICTS])
    dist = distance_km(d_lnt[:, None], d_lat[:, None], w.inst_lnt[None, :], w.inst_lat[None, :])
    scale = np.array([25.0, 7.0, 8.0, 3.5, 4.0, 2.5])[w.inst_cat]
    base = w.inst_size[None, :] * np.exp(-dist / scale[None, :])
    shares = {
        M_OUT: [0.30, 0.22, 0.08, 0.25, 0.15, 0.0],
        M_ER: [0.55, 0.40, 0.05, 0.0, 0.0, 0.0],
        M_IN: [0.45, 0.35, 0.12, 0.08, 0.0, 0.0],
        M_PHARM: [0, 0, 0, 0, 0, 1.0],
        M_CHRONIC: [0.15, 0.25, 0.0, 0.60, 0.0, 0.0],
    }
    out = {}
    for med, share in shares.items():
        p = np.zeros_like(base)
        for c, s in enumerate(share):
            cols = w.inst_cat == c
            if s == 0 or not cols.any():
                continue
            block = base[:, cols]
            p[:, cols] = s * block / block.sum(axis=1, keepdims=True)
        p /= p.sum(axis=1, keepdims=True)
        cum = np.cumsum(p, axis=1)
        cum[:, -1] = 1.0 + 1e-9
        out[med] = cum
    return out


def choose_institutions(rng: np.random.Generator, cum: np.ndarray, district: np.ndarray) -> np.ndarray:
    """Sample an institution per entry given the home district and a cumulative choice matrix."""
    u = rng.random(len(district))
    out = np.empty(len(district), dtype=np.int32)
    for d in range(cum.shape[0]):
        sel = district == d
        if sel.any():
            out[sel] = np.searchsorted(cum[d], u[sel], side="right")
    return np.minimum(out, cum.shape[1] - 1)


def _diagnoses(rng: np.random.Generator, med: int, gend: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Main diagnosis per visit respecting sex and age limits (vectorised per sex/age band)."""
    attr = {M_OUT: "w_out", M_ER: "w_er", M_IN: "w_in"}[med]
    weights = np.array([getattr(d, attr) for d in N.DIAGNOSES])
    sexes = np.array([d.sex for d in N.DIAGNOSES])
    amin = np.array([d.age_min for d in N.DIAGNOSES])
    amax = np.array([d.age_max for d in N.DIAGNOSES])
    bands = np.array([0, 16, 20, 30, 35, 40, 45, 60, 80, 200])
    band = np.searchsorted(bands, age, side="right") - 1
    out = np.empty(len(gend), dtype=np.int16)
    for sex in (1, 2):
        for b in range(len(bands) - 1):
            sel = (gend == sex) & (band == b)
            if not sel.any():
                continue
            a = bands[b]
            ok = ((sexes == 0) | (sexes == sex)) & (amin <= a) & (amax >= min(bands[b + 1] - 1, 110))
            wts = np.where(ok, weights, 0.0)
            if a < 16:  # children: mostly respiratory and digestive
                wts = wts * np.array([3 if d.code[0] in "JAK" else (0 if d.code[0] in "CIMN" else 1)
                                      for d in N.DIAGNOSES])
            if a >= 60:
                wts = wts * np.array([2.0 if d.code[0] in "ICNE" else 1.0 for d in N.DIAGNOSES])
            out[sel] = rng.choice(len(N.DIAGNOSES), sel.sum(), p=wts / wts.sum())
    return out


# Ordinary care never puts one person at two institutions within this many seconds, nor in two stays at once:
# such pairs are impossible events that the certain-evidence rules rightly flag, so background care avoids them.
MIN_SECONDS_BETWEEN_PLACES = 4 * 3600


def impossible_pairs(psn: np.ndarray, inst: np.ndarray, begn: np.ndarray, endt: np.ndarray,
                     stay: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later) positions of one person's consecutive visits too close to be possible: two institutions
    within `MIN_SECONDS_BETWEEN_PLACES`, or a stay beginning inside the person's previous stay."""
    order = np.lexsort((begn, psn))
    p, i, b, e, st = psn[order], inst[order], begn[order], endt[order], stay[order]
    too_soon = np.flatnonzero((p[1:] == p[:-1]) & (i[1:] != i[:-1]) & (b[1:] - b[:-1] < MIN_SECONDS_BETWEEN_PLACES))
    stay_rows = np.flatnonzero(st)
    sp = stay_rows[np.flatnonzero((p[stay_rows[1:]] == p[stay_rows[:-1]]) & (b[stay_rows[1:]] < e[stay_rows[:-1]]))]
    nxt = stay_rows[np.searchsorted(stay_rows, sp) + 1]
    return np.r_[order[too_soon], order[sp]], np.r_[order[too_soon + 1], order[nxt]]


def _impossible_rows(psn: np.ndarray, inst: np.ndarray, begn: np.ndarray, endt: np.ndarray,
                     stay: np.ndarray) -> np.ndarray:
    return impossible_pairs(psn, inst, begn, endt, stay)[1]


def possible_visits(batches: list[tuple[int, dict[str, object]]]) -> list[tuple[int, dict[str, object]]]:
    """The batches without visits that would make a person's care impossible (two places within hours, two
    stays at once), dropped later-first until none is left; array columns are cut, scalar ones kept."""
    sizes = [k for k, _ in batches]
    offsets = np.r_[0, np.cumsum(sizes)]

    def column(name: str, default: object) -> np.ndarray:
        return np.concatenate([np.broadcast_to(np.asarray(c.get(name, default)), (k,)) for k, c in batches])

    psn, inst = column("psn", -1).astype(np.int64), column("inst", -1).astype(np.int64)
    begn = column("begn", 0).astype(np.int64)
    endt = column("endt", 0).astype(np.int64)
    stay = column("med", -1) == M_IN
    keep = np.ones(len(psn), dtype=bool)
    for _ in range(20):
        alive = np.flatnonzero(keep)
        bad = _impossible_rows(psn[alive], inst[alive], begn[alive], endt[alive], stay[alive])
        if not len(bad):
            break
        keep[alive[bad]] = False
    out: list[tuple[int, dict[str, object]]] = []
    for j, (k, cols) in enumerate(batches):
        mask = keep[offsets[j]:offsets[j + 1]]
        cut = {name: (value[mask] if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == k
                      else value) for name, value in cols.items()}
        out.append((int(mask.sum()), cut))
    return out


def background_visits(rng: np.random.Generator, w: World, vt: VisitTable, pools: Pools, days: int,
                      start_weekday: int) -> Background:
    """Ordinary care: outpatient, emergency, chronic (门诊慢特病) visits, stays and pharmacy purchases."""
    n = w.n_persons
    age = w.age.astype(float)
    dept_index = {d.code: i for i, d in enumerate(N.DEPTS)}
    diag_dept = np.array([dept_index[d.dept] for d in N.DIAGNOSES])
    cum = _choice_matrices(w)
    yr = days / 365.0

    def per_person(rate: np.ndarray) -> np.ndarray:
        gamma = rng.gamma(2.0, 0.5, n)  # heterogeneity: some people see doctors far more often
        return rng.poisson(rate * gamma * yr)

    kid = (age < 6).astype(float)
    r_out = 2.45 + 0.035 * np.maximum(0, age - 40) + 2.2 * kid
    r_er = 0.22 + 0.25 * kid + 0.25 * (age > 70)
    r_ph = 1.7 + 0.015 * np.maximum(0, age - 40)
    r_in = 0.045 + 0.003 * np.maximum(0, age - 40) + 0.08 * (age < 3) + 0.04 * ((w.gend == 2) & (age >= 22)
                                                                                 & (age <= 38))
    # chronic patients (高血压/糖尿病/冠心病/慢性肾病), with a usual doctor and pharmacy
    p_chronic = np.clip((age - 32) / 55, 0, 0.62) * 0.6
    chronic = np.flatnonzero(rng.random(n) < p_chronic)
    chronic_codes = {"I10.x00": 10, "E11.900": 6, "I25.103": 3, "N18.900": 1}
    diag_index = {d.code: i for i, d in enumerate(N.DIAGNOSES)}
    cd = np.array([diag_index[c] for c in chronic_codes])
    cw = np.array(list(chronic_codes.values()), float)
    c_diag = cd[rng.choice(len(cd), len(chronic), p=cw / cw.sum())]
    idx = w.item_key_index
    # a chronic drug per patient: key drugs for some (insulin, SGLT2, GLP-1, ticagrelor, EPO)
    drug_choices = {
        diag_index["I10.x00"]: (["amlo", "nifed", "valsar", "irbe"], [0.3, 0.25, 0.25, 0.2]),
        diag_index["E11.900"]: (["metf", "acarb", "glarg", "dapa", "sema"], [0.4, 0.2, 0.18, 0.14, 0.08]),
        diag_index["I25.103"]: (["atorv", "clop", "ticag", "aspi"], [0.35, 0.25, 0.15, 0.25]),
        diag_index["N18.900"]: (["epo", "calc", "kcl"], [0.3, 0.4, 0.3]),
    }
    c_drug = np.zeros(len(chronic), dtype=np.int16)
    for dg, (keys, probs) in drug_choices.items():
        sel = c_diag == dg
        c_drug[sel] = np.array([idx[k] for k in keys])[rng.choice(len(keys), sel.sum(), p=probs)]
    c_inst = choose_institutions(rng, cum[M_CHRONIC], w.district[chronic])
    c_pharm = choose_institutions(rng, cum[M_PHARM], w.district[chronic])
    c_refills = rng.random(len(chronic)) < 0.4
    c_visits = np.where(rng.random(len(chronic)) < 0.7, rng.integers(int(8 * yr) + 1, int(13 * yr) + 2,
                                                                     len(chronic)), 0)
    start_weekday = int(start_weekday)

    parts: list[dict[str, np.ndarray]] = []

    def add_simple(med: int, counts: np.ndarray, hours: np.ndarray, weekend: float) -> None:
        psn = np.repeat(np.arange(n), counts).astype(np.int32)
        k = len(psn)
        day = _days(rng, k, days, start_weekday, weekend)
        begn = day.astype(np.int64) * DAY + _hour_of_day(rng, k, hours)
        inst = choose_institutions(rng, cum[med], w.district[psn])
        parts.append({"psn": psn, "inst": inst, "med": np.full(k, med), "begn": begn})

    add_simple(M_OUT, per_person(r_out), HOURS_OUT, 0.55)
    add_simple(M_ER, per_person(r_er), HOURS_ER, 1.0)
    add_simple(M_PHARM, per_person(r_ph), HOURS_PHARM, 1.1)
    add_simple(M_IN, rng.poisson(r_in * yr), HOURS_ADMIT, 0.5)
    # chronic visits: roughly monthly at the usual institution
    cpsn_i = np.repeat(np.arange(len(chronic)), c_visits)
    k = len(cpsn_i)
    seq = np.arange(k) - np.repeat(np.r_[0, np.cumsum(c_visits)[:-1]], c_visits)
    first = rng.integers(0, 35, len(chronic))
    interval = rng.uniform(26, 34, len(chronic))
    day = (first[cpsn_i] + seq * interval[cpsn_i] + rng.integers(-3, 4, k)).astype(np.int64)
    keep = (day >= 0) & (day < days)
    cpsn_i, day = cpsn_i[keep], day[keep]
    parts.append({"psn": chronic[cpsn_i].astype(np.int32), "inst": c_inst[cpsn_i], "med": np.full(len(day), M_CHRONIC),
                  "begn": day * DAY + _hour_of_day(rng, len(day), HOURS_OUT), "chronic_i": cpsn_i})
    # chronic pharmacy refills: monthly at the usual pharmacy
    refill = np.flatnonzero(c_refills)
    r_n = rng.integers(int(8 * yr) + 1, int(12 * yr) + 2, len(refill))
    rpsn_i = np.repeat(refill, r_n)
    seq = np.arange(len(rpsn_i)) - np.repeat(np.r_[0, np.cumsum(r_n)[:-1]], r_n)
    day = (first[rpsn_i] + 5 + seq * interval[rpsn_i] + rng.integers(-2, 3, len(rpsn_i))).astype(np.int64)
    keep = (day >= 0) & (day < days)
    rpsn_i, day = rpsn_i[keep], day[keep]
    parts.append({"psn": chronic[rpsn_i].astype(np.int32), "inst": c_pharm[rpsn_i], "med": np.full(len(day), M_PHARM),
                  "begn": day * DAY + _hour_of_day(rng, len(day), HOURS_PHARM), "chronic_i": rpsn_i})

    # diagnoses and departments
    for part in parts:
        k = len(part["psn"])
        med = int(part["med"][0]) if k else M_OUT
        g, a = w.gend[part["psn"]], age[part["psn"]]
        if "chronic_i" in part:
            part["diag"] = c_diag[part["chronic_i"]]
        elif med == M_PHARM:
            part["diag"] = np.full(k, -1)
        else:
            part["diag"] = _diagnoses(rng, med, g, a)
    # volumes per (institution, dept) decide the staff
    m, nd = len(w.inst_code), len(N.DEPTS)
    vol = np.zeros((m, nd))
    vol_inst = np.zeros(m)
    for part in parts:
        inst = part["inst"]
        dg = part["diag"]
        dept = np.where(dg >= 0, diag_dept[np.maximum(dg, 0)], -1)
        if int(part["med"][0]) == M_ER:
            dept[:] = dept_index["A20"]
        ok = (dept >= 0) & w.inst_depts[inst, np.maximum(dept, 0)]
        dept = np.where(ok, dept, w.inst_fallback_dept[inst])
        part["dept"] = dept
        hosp = dept >= 0
        np.add.at(vol, (inst[hosp], dept[hosp]), 1)
        np.add.at(vol_inst, inst, 1)
    add_staff(w, rng, vol, vol_inst)
    key = w.prac_inst.astype(np.int64) * nd + np.maximum(w.prac_dept, 0)
    docs = np.flatnonzero(w.prac_dept >= 0)
    order = docs[np.argsort(key[docs], kind="stable")]
    g_len = np.bincount(key[order], minlength=m * nd)
    g_start = np.r_[0, np.cumsum(g_len)[:-1]]
    phs = np.flatnonzero(w.prac_dept < 0)
    ph_order = phs[np.argsort(w.prac_inst[phs], kind="stable")]
    ph_len = np.bincount(w.prac_inst[ph_order], minlength=m)
    ph_start = np.r_[0, np.cumsum(ph_len)[:-1]]
    c_len = np.bincount(w.opter_inst, minlength=m)
    c_start = np.r_[0, np.cumsum(c_len)[:-1]]
    c_members = np.arange(len(w.opter_inst))
    # usual physician of each chronic patient
    c_dept = np.where(w.inst_depts[c_inst, diag_dept[c_diag]], diag_dept[c_diag], w.inst_fallback_dept[c_inst])
    c_prac = pick_in_group(rng, g_start, g_len, order, c_inst.astype(np.int64) * nd + c_dept)
    cert_p = np.array([0.5, 0.08, 0.42])
    batches: list[tuple[int, dict[str, object]]] = []
    for part in parts:
        k = len(part["psn"])
        if not k:
            continue
        med = int(part["med"][0])
        inst, dept, dg = part["inst"], part["dept"], part["diag"]
        cols: dict[str, object] = {"psn": part["psn"], "inst": inst, "med": med, "begn": part["begn"],
                                   "dept": dept, "diag": dg}
        if med == M_PHARM:
            prac = pick_in_group(rng, ph_start, ph_len, ph_order, inst)
        elif "chronic_i" in part:
            prac = c_prac[part["chronic_i"]]
        else:
            prac = pick_in_group(rng, g_start, g_len, order, inst.astype(np.int64) * nd + dept)
        cols["prac"] = prac
        cols["opter"] = pick_in_group(rng, c_start, c_len, c_members, inst)
        cols["cert"] = rng.choice(3, k, p=cert_p)
        if med == M_IN:
            mean_los = np.array([d.los for d in N.DIAGNOSES])[dg]
            los = np.clip(np.round(rng.lognormal(np.log(mean_los) - 0.08, 0.4)), 1, 45).astype(np.int16)
            begn_day = np.minimum(part["begn"] // DAY, days - 1 - los)
            cols["begn"] = begn_day * DAY + part["begn"] % DAY
            cols["los"] = los
            cols["endt"] = (begn_day + los) * DAY + rng.integers(8 * 3600, 12 * 3600, k)
            cols["n_inday"] = rng.integers(1, 4, k)
            cols["pool"] = dg
        else:
            cols["endt"] = part["begn"] + (rng.integers(300, 5400, k) if med in (M_OUT, M_ER, M_CHRONIC) else 0)
        if "chronic_i" in part:
            ci = part["chronic_i"]
            cols["fix1"] = c_drug[ci]
            cols["fix1_days"] = rng.integers(28, 31, k)
            cols["n_exam"] = (rng.random(k) < 0.25).astype(int)
            cols["pool"] = dg
            if med == M_PHARM:
                cols["prescriber"] = c_prac[ci]
        elif med == M_PHARM:
            cols["pool"] = pools.otc_pool
            cols["n_rand"] = rng.choice([1, 2, 3, 4], k, p=[0.45, 0.3, 0.17, 0.08])
        elif med != M_IN:
            cols["pool"] = dg
            cols["n_rand"] = np.minimum(rng.choice([0, 1, 2, 3], k, p=[0.12, 0.38, 0.33, 0.17]),
                                        pools.drug_len[np.maximum(dg, 0)])
            cols["n_exam"] = np.minimum(rng.choice([0, 1, 2], k, p=[0.5, 0.35, 0.15]),
                                        pools.svc_len[np.maximum(dg, 0)])
        batches.append((k, cols))
    for k, cols in possible_visits(batches):
        vt.add(k, **cols)
    return Background(chronic, c_diag, c_drug, c_inst, c_prac, c_pharm, c_refills, g_start, g_len, order,
                      ph_start, ph_len, ph_order, c_start, c_len, c_members, cum)
