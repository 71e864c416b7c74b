"""Independent synthetic city: contract tables (CSV) with planted fraud schemes, look-alikes and truth.json."""

# Written without sight of fraudnet's own generator or detectors, so that quality figures measured on it are not
# one author's assumptions checked against themselves. Vectorised with numpy, written with pyarrow; deterministic
# for a given (persons, seed, months).

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from bench.cities import catalog as C

__all__ = ["generate", "main", "id_check_digit"]

DAY = 86400
T0 = np.datetime64("2025-01-01T00:00:00")
T0_EPOCH = int(T0.astype("datetime64[s]").astype(np.int64))
TERT, SEC, PRIV, CLIN, PHAR = range(5)
TYPE_NAMES = ["三级医院", "二级医院", "民营医院", "社区卫生服务中心", "药店"]
MEDS = ["11", "13", "14", "21", "41", "52", "25"]
M11, M13, M14, M21, M41, M52, M25 = range(len(MEDS))
INPAT = np.array([False, False, False, True, False, True, True])
NODOC = -1
TAG_BG, TAG_LOOK = -1, -2
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))

IT = C.ITEM  # item key -> index
NI = len(C.ITEMS)
IT_PRICE = np.array([it[4] for it in C.ITEMS])
IT_LIMIT = np.array([it[5] for it in C.ITEMS])
IT_MAXD = np.array([it[6] for it in C.ITEMS])
IT_BOXD = np.array([it[8] for it in C.ITEMS])
IT_DRUG = np.array([it[3] in ("101", "102") for it in C.ITEMS])
DG = C.DIAG
D = C.DEPT
DIAG_DEPT = np.array([D[d[2]] for d in C.DIAGS])
DIAG_LOS = np.array([d[4] for d in C.DIAGS])
DIAG_SURG = np.array([IT[d[6]] if d[6] else -1 for d in C.DIAGS])
MAXDRUG = max(len(d[5]) for d in C.DIAGS)
DIAG_DRUGS = np.full((len(C.DIAGS), MAXDRUG), -1)
for _k, _d in enumerate(C.DIAGS):
    DIAG_DRUGS[_k, :len(_d[5])] = [IT[x] for x in _d[5]]
DIAG_NDRUG = (DIAG_DRUGS >= 0).sum(1)
OTC = np.array([IT[k] for k in C.OTC_KEYS])

# outpatient / inpatient diagnoses by department and sex: dept -> (male list, female list)
OPD_DIAGS = {
    "A03": ["J06.900", "J20.900", "K29.700", "I10.x00", "E11.900", "I25.100", "J44.100", "B18.100"],
    "A04": ["K40.900", "K80.200", "R10.400"],
    "A0406": ["M51.200", "M17.900", "S52.500"],
    "A0501": ["N76.000", "O20.000", "Z34.900"],
    "A07": ["J06.900", "J45.900", "A09.900"],
    "A19": ["C34.900", "C50.900"],
    "A0305": ["N18.500"],
    "A0403": ["N40.x00", "N20.000"],
    "A20": ["R10.400", "S06.000", "J06.900"],
    "A02": ["J06.900", "M54.500", "I10.x00", "K29.700", "E11.900"],
    "Y01": ["J06.900"],
}
IPD_DIAGS = {
    "A03": ["J18.900", "I63.900", "I25.100", "E11.900", "J44.100", "K29.700", "I10.x00"],
    "A04": ["K35.800", "K80.200", "K40.900"],
    "A0406": ["M51.200", "S72.000", "S52.500"],
    "A0501": ["O20.000"],
    "A07": ["J18.900", "A09.900", "J45.900"],
    "A19": ["C34.900", "C50.900"],
    "A0305": ["N18.500"],
    "A0403": ["N40.x00", "N20.000"],
    "A20": ["I21.900", "S06.000"],
    "A02": ["J06.900"],
    "Y01": ["J06.900"],
}
INST_DEPTS = {
    TERT: ["A03", "A04", "A0501", "A07", "A0406", "A19", "A0305", "A0403", "A20"],
    SEC: ["A03", "A04", "A0501", "A07", "A0406", "A20", "A0305", "A0403"],
    PRIV: ["A03", "A04", "A0406", "A0403", "A0501"],
    CLIN: ["A02", "A03"],
    PHAR: ["Y01"],
}


def id_check_digit(first17: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check characters for rows of 17 digits (int array, shape (n, 17))."""
    return ID_CHECK[(first17 * ID_WEIGHTS).sum(1) % 11]


def _some(rng: np.random.Generator, cand: np.ndarray, n: int) -> np.ndarray:
    """Up to n distinct elements of cand (all of them when there are fewer)."""
    return rng.choice(cand, min(int(n), len(cand)), replace=False)


def _haversine(lnt1, lat1, lnt2, lat2):
    p = np.pi / 180
    a = np.sin((lat2 - lat1) * p / 2) ** 2 + np.cos(lat1 * p) * np.cos(lat2 * p) * np.sin((lnt2 - lnt1) * p / 2) ** 2
    return 12742.0 * np.arcsin(np.sqrt(a))


class Builder:
    """Accumulates visit batches and their fee lines (batch-local visit numbers are offset on add)."""

    VF = ("psn", "inst", "med", "begin", "end", "cert", "doc", "dept", "diag", "opter", "tag")
    LF = ("v", "item", "t", "cnt", "pric", "prd", "doc", "dept")

    def __init__(self) -> None:
        self.vis: dict[str, list] = {k: [] for k in self.VF}
        self.lines: dict[str, list] = {k: [] for k in self.LF}
        self.n = 0

    def add(self, v: dict, ln: dict) -> np.ndarray:
        n = len(v["psn"])
        for k in self.VF:
            self.vis[k].append(np.asarray(v[k]))
        for k in self.LF:
            a = np.asarray(ln[k])
            self.lines[k].append(a + self.n if k == "v" else a)
        idx = np.arange(self.n, self.n + n)
        self.n += n
        return idx

    def add_lines(self, ln: dict) -> None:
        """Extra lines for visits already added (ln["v"] holds global visit numbers)."""
        for k in self.LF:
            self.lines[k].append(np.asarray(ln[k]))

    def last_lines(self) -> dict:
        return {k: x[-1] for k, x in self.lines.items()}

    def arrays(self) -> tuple[dict, dict]:
        v = {k: np.concatenate(x) for k, x in self.vis.items()}
        ln = {k: np.concatenate(x) for k, x in self.lines.items()}
        return v, ln


class City:
    """The generated world: persons, institutions, practitioners, operators and the visit builder."""

    def __init__(self, persons: int, seed: int, months: int) -> None:
        self.N = persons
        self.rng = np.random.default_rng(seed)
        self.months = months
        end = (np.datetime64("2025-01") + np.timedelta64(months, "M")).astype("datetime64[D]")
        self.W = int((end - T0.astype("datetime64[D]")).astype(int))  # window length in days
        self.B = Builder()
        self.used = np.zeros(persons, bool)
        self.schemes: list[dict] = []
        self.lookalikes: list[dict] = []
        self._regions()
        self._persons()
        self._institutions()
        self._staff()

    # ---------------------------------------------------------------- world
    def _regions(self) -> None:
        rows = []
        for ci, (cname, insu, share, dists) in enumerate(C.CITIES):
            for code, dname, lnt, lat, dsh in dists:
                rows.append((ci, code, cname, dname, lnt, lat, share * dsh, insu))
        self.d_city = np.array([r[0] for r in rows])
        self.d_code = [r[1] for r in rows]
        self.d_name = [r[2] + r[3] for r in rows]
        self.d_lnt = np.array([r[4] for r in rows])
        self.d_lat = np.array([r[5] for r in rows])
        self.d_share = np.array([r[6] for r in rows])
        self.d_share /= self.d_share.sum()
        self.c_insu = [c[1] for c in C.CITIES]

    def _persons(self) -> None:
        rng, N = self.rng, self.N
        sizes = rng.choice([1, 2, 3, 4, 5], size=N, p=[0.22, 0.3, 0.26, 0.14, 0.08])
        hh = np.repeat(np.arange(N), sizes)[:N]
        nh = hh[-1] + 1
        first = np.r_[True, hh[1:] != hh[:-1]]
        self.hh = hh
        hdist = rng.choice(len(self.d_code), size=nh, p=self.d_share)
        self.dist = hdist[hh]
        self.city = self.d_city[self.dist]
        bands = np.array([[0, 14], [15, 39], [40, 59], [60, 79], [80, 95]])
        b = rng.choice(5, size=N, p=[0.14, 0.32, 0.31, 0.19, 0.04])
        age = rng.integers(bands[b, 0], bands[b, 1] + 1)
        age[first] = np.maximum(age[first], rng.integers(22, 40, first.sum()))
        self.age = age
        self.sex = rng.integers(1, 3, N)  # 1 male, 2 female
        bday = (T0.astype("datetime64[D]") - (age * 365.25).astype(int) - rng.integers(1, 365, N))
        self.brdy = bday
        self.frail = rng.gamma(2.0, 0.5, N)
        # death: mostly the elderly, inside the window (background visits after it are removed)
        pd_ = np.where(age >= 80, 0.09, np.where(age >= 60, 0.025, 0.002))
        dead = rng.random(N) < pd_
        self.death = np.full(N, -1)
        self.death[dead] = rng.integers(5, self.W - 2, dead.sum())
        # phones: children and the very old often give a household member's phone
        mob = rng.integers(13_000_000_000, 19_999_999_999, N)
        share = (~first) & ((age < 16) | (age > 75)) & (rng.random(N) < 0.6)
        head_idx = np.flatnonzero(first)[hh]
        mob[share] = mob[head_idx[share]]
        self.mob = mob.astype(np.int64)
        self.nomob = (rng.random(N) < 0.02) & ~share
        road = rng.integers(0, len(C.ROADS), nh)
        no = rng.integers(1, 400, nh)
        bld = rng.integers(1, 30, nh)
        room = rng.integers(1, 33, nh) * 100 + rng.integers(1, 6, nh)
        self.h_addr = np.array([f"四川省{self.d_name[d]}{C.ROADS[r]}{n}号{b_}栋{rm}室"
                                for d, r, n, b_, rm in zip(hdist, road, no, bld, room, strict=False)], dtype=object)
        self.addr = self.h_addr[hh].copy()
        self.insutype = np.where((age >= 18) & (age < 65) & (rng.random(N) < 0.6), 310, 390)
        emp = rng.integers(0, len(C.EMPLOYERS), N)
        self.emp = np.where(self.insutype == 310, np.array(C.EMPLOYERS, dtype=object)[emp], "")
        self.insu_city = self.city.copy()
        migr = rng.random(N) < 0.02
        self.insu_city[migr] = rng.integers(0, 3, migr.sum())
        self.psn_code = np.array([f"{self.d_code[d]}{s:014d}" for d, s in
                                  zip(self.dist, rng.permutation(N) * 7919 + 100_000_003, strict=False)], dtype=object)
        sn = np.array(list(C.SURNAMES), dtype=object)[rng.integers(0, len(C.SURNAMES), N)]
        gv = np.array(list(C.GIVEN), dtype=object)[rng.integers(0, len(C.GIVEN), N)]
        self.name = sn + "*" + gv

    def _institutions(self) -> None:
        rng, N = self.rng, self.N
        counts = {TERT: max(3, N // 25000), SEC: max(12, N // 6000), PRIV: max(12, N // 8000),
                  CLIN: max(14, N // 2000), PHAR: max(18, N // 1000)}
        rows = []
        nd = len(self.d_code)
        for t, n in counts.items():
            if t == TERT:
                dists = [0, 6, 9] + list(rng.choice(6, n - 3, p=self.d_share[:6] / self.d_share[:6].sum()))
            elif t in (CLIN, PHAR):
                dists = list(range(nd)) + list(rng.choice(nd, max(0, n - nd), p=self.d_share))
            else:
                dists = list(rng.choice(nd, n, p=self.d_share))
                dists[:3] = [0, 6, 9]
            for d in dists[:n]:
                rows.append((t, int(d)))
        self.i_type = np.array([r[0] for r in rows])
        self.i_dist = np.array([r[1] for r in rows])
        self.i_city = self.d_city[self.i_dist]
        ni = len(rows)
        self.NI = ni
        self.i_lnt = self.d_lnt[self.i_dist] + rng.normal(0, 0.03, ni)
        self.i_lat = self.d_lat[self.i_dist] + rng.normal(0, 0.025, ni)
        beds = {TERT: (1200, 3000), SEC: (200, 600), PRIV: (60, 200), CLIN: (0, 40), PHAR: (0, 1)}
        self.i_beds = np.array([rng.integers(*beds[t]) for t in self.i_type])
        wt = {TERT: (6, 10), SEC: (2, 4), PRIV: (1, 2), CLIN: (1, 1.5), PHAR: (1, 1.6)}
        self.i_w = np.array([rng.uniform(*wt[t]) for t in self.i_type])
        pref = {TERT: "H", SEC: "H", PRIV: "H", CLIN: "H", PHAR: "P"}
        serial = rng.permutation(ni) * 37 + 1000
        self.i_code = np.array([f"{pref[t]}{self.d_code[d]}{s:05d}" for t, d, s in
                                zip(self.i_type, self.i_dist, serial, strict=False)], dtype=object)
        names = []
        cnt = {}
        for t, d in zip(self.i_type, self.i_dist, strict=False):
            cnt[(t, d)] = cnt.get((t, d), 0) + 1
            k = cnt[(t, d)]
            dn = self.d_name[d]
            names.append({TERT: f"{dn}第{k}人民医院", SEC: f"{dn}第{k}中医医院", PRIV: f"{dn}康泰{k}号医院",
                          CLIN: f"{dn}第{k}社区卫生服务中心", PHAR: f"{dn}益康大药房第{k}分店"}[t])
        self.i_name = np.array(names, dtype=object)
        lv = {TERT: ["02", "03"], SEC: ["05", "06"], PRIV: ["06", "07", "11"], CLIN: ["08", "09"], PHAR: ["11"]}
        self.i_lv = np.array([rng.choice(lv[t]) for t in self.i_type], dtype=object)
        self.i_natu = np.where(np.isin(self.i_type, [PRIV, PHAR]), "2", "1")
        # operators (cashiers) per institution
        nop = np.array([{TERT: 10, SEC: 5, PRIV: 3, CLIN: 2, PHAR: 2}[t] for t in self.i_type])
        self.op_inst = np.repeat(np.arange(ni), nop)
        self.op_start = np.r_[0, np.cumsum(nop)[:-1]]
        self.op_n = nop
        k_in = np.arange(len(self.op_inst)) - self.op_start[self.op_inst]
        self.op_code = np.array([f"SY{i:05d}{k:02d}" for i, k in zip(self.op_inst, k_in, strict=True)],
                                dtype=object)
        # busy pharmacies (look-alike): next to tertiary hospitals, five times the custom
        ph = np.flatnonzero(self.i_type == PHAR)
        self.busy_ph = rng.choice(ph, min(len(ph), max(2, N // 60000)), replace=False)
        self.i_w[self.busy_ph] *= 5

    def _staff(self) -> None:
        rng = self.rng
        ndep = len(C.DEPTS)
        nd = {TERT: (80, 150), SEC: (25, 50), PRIV: (8, 15), CLIN: (2, 5), PHAR: (1, 3)}
        d_inst, d_dept = [], []
        for i, t in enumerate(self.i_type):
            deps = INST_DEPTS[t]
            n = max(len(deps), rng.integers(*nd[t]))
            dd = list(range(len(deps))) + list(rng.integers(0, len(deps), n - len(deps)))
            for x in dd:
                d_inst.append(i)
                d_dept.append(D[deps[x]])
        order = np.lexsort((np.array(d_dept), np.array(d_inst)))
        self.doc_inst = np.array(d_inst)[order]
        self.doc_dept = np.array(d_dept)[order]
        key = self.doc_inst * ndep + self.doc_dept
        self.doc_start = np.searchsorted(key, np.arange(self.NI * ndep)).reshape(self.NI, ndep)
        self.doc_cnt = (np.searchsorted(key, np.arange(self.NI * ndep), "right").reshape(self.NI, ndep)
                        - self.doc_start)
        fb = np.array([D[INST_DEPTS[t][0]] for t in self.i_type])
        self.eff_dept = np.where(self.doc_cnt > 0, np.arange(ndep)[None, :], fb[:, None])
        nd_ = len(self.doc_inst)
        self.doc_type = np.where(self.doc_dept == D["Y01"], 3, 1)
        num = rng.permutation(nd_) * 31 + 10007
        self.doc_code = np.array([f"{'Y' if t == 3 else 'D'}{self.d_code[self.i_dist[i]]}{n:06d}"
                                  for t, i, n in zip(self.doc_type, self.doc_inst, num, strict=False)], dtype=object)
        sn = np.array(list(C.SURNAMES), dtype=object)[rng.integers(0, len(C.SURNAMES), nd_)]
        g1 = np.array(list(C.GIVEN), dtype=object)[rng.integers(0, len(C.GIVEN), nd_)]
        g2 = np.array(list(C.GIVEN), dtype=object)[rng.integers(0, len(C.GIVEN), nd_)]
        self.doc_name = sn + g1 + g2

    # ---------------------------------------------------------------- pickers
    def pick_doc(self, inst: np.ndarray, dept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A practitioner of the institution in the department (or its fallback department)."""
        ed = self.eff_dept[inst, dept]
        st, cn = self.doc_start[inst, ed], self.doc_cnt[inst, ed]
        return st + (self.rng.random(len(inst)) * cn).astype(int), ed

    def pick_op(self, inst: np.ndarray) -> np.ndarray:
        return self.op_start[inst] + (self.rng.random(len(inst)) * self.op_n[inst]).astype(int)

    def pick_inst(self, psn: np.ndarray, types: np.ndarray, local: float = 0.88) -> np.ndarray:
        """Institution of the given type for each visit: same district (clinics, pharmacies) or same city."""
        rng = self.rng
        out = np.empty(len(psn), int)
        dist = self.dist[psn]
        near = rng.random(len(psn)) < local
        keyd = np.where((types >= CLIN) & near, dist, -1)
        city = self.city[psn]
        for t in np.unique(types):
            for c in range(3):
                m = (types == t) & (city == c)
                if not m.any():
                    continue
                for d in np.unique(keyd[m]):
                    mm = m & (keyd == d)
                    cand = np.flatnonzero((self.i_type == t) & ((self.i_dist == d) if d >= 0 else (self.i_city == c)))
                    if len(cand) == 0:
                        cand = np.flatnonzero((self.i_type == t) & (self.i_city == c))
                    if len(cand) == 0:
                        cand = np.flatnonzero(self.i_type == t)
                    w = np.cumsum(self.i_w[cand])
                    out[mm] = cand[np.searchsorted(w, rng.random(mm.sum()) * w[-1], "right").clip(0, len(cand) - 1)]
        return out

    def diag_for(self, dept: np.ndarray, psn: np.ndarray, table: dict) -> np.ndarray:
        rng = self.rng
        out = np.full(len(dept), DG["J06.900"])
        sex = self.sex[psn]
        for dcode, lst in table.items():
            for s in (1, 2):
                m = (dept == D[dcode]) & (sex == s)
                if not m.any():
                    continue
                ok = [DG[x] for x in lst if C.DIAGS[DG[x]][3] in (0, s)] or [DG["J06.900"]]
                out[m] = np.array(ok)[rng.integers(0, len(ok), m.sum())]
        return out

    def free(self, n: int, amin: int = 18, amax: int = 75, mask: np.ndarray | None = None,
             mark: bool = True) -> np.ndarray:
        """n persons not yet used by a scheme or look-alike, alive all window, in an age range."""
        ok = ~self.used & (self.death < 0) & (self.age >= amin) & (self.age <= amax)
        if mask is not None:
            ok &= mask
        cand = np.flatnonzero(ok)
        if len(cand) < n:
            cand = np.flatnonzero(~self.used & (self.death < 0))
        p = _some(self.rng, cand, n)
        if mark:
            self.used[p] = True
        return p

    def hour(self, n: int, kind: str) -> np.ndarray:
        rng = self.rng
        if kind == "opd":
            h = rng.choice([8, 9, 10, 11, 14, 15, 16], n, p=[.15, .22, .2, .13, .12, .1, .08])
        elif kind == "phar":
            h = rng.choice(np.arange(8, 22), n, p=np.array([4, 7, 8, 7, 5, 4, 4, 5, 5, 6, 8, 8, 5, 3]) / 79)
        elif kind == "emg":
            h = rng.integers(0, 24, n)
        else:
            h = rng.choice([8, 9, 10, 11, 14, 15, 16, 17], n)
        return h * 3600 + rng.integers(0, 3600, n)

    # ---------------------------------------------------------------- fee lines
    def lines_opd(self, begin, diag, doc, dept, med, inst, k_drugs=None, prd=None, drugs=None):
        """Outpatient / emergency / chronic-visit lines: consultation, drugs, some tests."""
        rng = self.rng
        n = len(begin)
        consult = np.where(med == M13, IT["emg"], np.where(self.i_type[inst] == CLIN, IT["gp"], IT["opd"]))
        parts = [(np.arange(n), consult, begin, np.ones(n), np.full(n, np.nan))]
        if drugs is None:
            k = k_drugs if k_drugs is not None else rng.choice([1, 2, 3], n, p=[.35, .45, .2])
            k = np.minimum(k, DIAG_NDRUG[diag])
            v = np.repeat(np.arange(n), k)
            j = np.arange(len(v)) - np.repeat(np.cumsum(k) - k, k)
            st = rng.integers(0, 8, n)
            item = DIAG_DRUGS[diag[v], (st[v] + j) % DIAG_NDRUG[diag[v]]]
        else:
            v, j = np.nonzero(drugs >= 0)
            item = drugs[v, j]
        chronic = IT_MAXD[item] >= 30
        days = np.where(chronic, rng.integers(14, 31, len(v)), rng.integers(3, 8, len(v))).astype(float)
        if prd is not None:
            days = np.where(chronic, prd[v], days)
        cnt = np.maximum(1, np.round(days / IT_BOXD[item]))
        parts.append((v, item, begin[v] + 600 + j * 60, cnt, days))
        lab = rng.random(n) < 0.3
        parts.append((np.flatnonzero(lab), np.full(lab.sum(), IT["cbc"]), begin[lab] + 300, np.ones(lab.sum()),
                      np.full(lab.sum(), np.nan)))
        for key, p in (("ecg", .07), ("ct", .05), ("bus", .05)):
            m = rng.random(n) < p
            parts.append((np.flatnonzero(m), np.full(m.sum(), IT[key]), begin[m] + 420, np.ones(m.sum()),
                          np.full(m.sum(), np.nan)))
        m = (med == M13) & (rng.random(n) < 0.35)
        for off, key in ((900, "infu"), (910, "nacl"), (920, "ivset")):
            parts.append((np.flatnonzero(m), np.full(m.sum(), IT[key]), begin[m] + off, np.ones(m.sum()),
                          np.full(m.sum(), np.nan) if key != "nacl" else np.ones(m.sum())))
        m = (dept == D["A0305"]) & (diag == DG["Z49.100"])
        for off, key in ((60, "dial"), (70, "dlzr")):
            parts.append((np.flatnonzero(m), np.full(m.sum(), IT[key]), begin[m] + off, np.ones(m.sum()),
                          np.full(m.sum(), np.nan)))
        return self._assemble(parts, doc, dept)

    def lines_phar(self, begin, pharmacist, items_per_visit, prescriber=None, prd=None):
        """Pharmacy purchase lines; items_per_visit is a (n, k) array of item indices (-1 = none)."""
        n, kmax = items_per_visit.shape
        v, j = np.nonzero(items_per_visit >= 0)
        item = items_per_visit[v, j]
        chronic = IT_MAXD[item] >= 30
        days = np.where(chronic, self.rng.integers(28, 31, len(v)), self.rng.integers(3, 8, len(v))).astype(float)
        if prd is not None:
            days = np.where(chronic, prd[v], days)
        cnt = np.maximum(1, np.round(days / IT_BOXD[item]))
        doc = pharmacist[v].copy()
        if prescriber is not None:
            doc = np.where(chronic & (prescriber[v] >= 0), prescriber[v], doc)
        parts = [(v, item, begin[v] + 30 + j * 20, cnt, days)]
        out = self._assemble(parts, pharmacist, np.full(n, D["Y01"]))
        out["doc"] = doc
        return out

    def lines_ipd(self, begin, los, diag, doc, dept, empty_frac=None):
        """Inpatient lines per day: bed, nursing, ward round, drugs, infusion; tests on day 0, surgery on day 1."""
        rng = self.rng
        n = len(begin)
        v = np.repeat(np.arange(n), los)
        d = np.arange(len(v)) - np.repeat(np.cumsum(los) - los, los)
        day0 = (begin // DAY) * DAY
        tday = np.where(d == 0, begin[v] + 1200, day0[v] + d * DAY + 7 * 3600 + rng.integers(0, 1800, len(v)))
        keep_treat = np.ones(len(v), bool)
        if empty_frac is not None:
            keep_treat = (d == 0) | (rng.random(len(v)) >= empty_frac[v])
        nanv = np.full(len(v), np.nan)
        one = np.ones(len(v))
        parts = [(v, np.full(len(v), IT["bed"]), tday, one, nanv)]
        tv, tt = v[keep_treat], tday[keep_treat]
        nt = len(tv)
        parts.append((tv, np.full(nt, IT["nurs"]), tt + 60, np.ones(nt), np.full(nt, np.nan)))
        parts.append((tv, np.full(nt, IT["ipdx"]), tt + 120, np.ones(nt), np.full(nt, np.nan)))
        nd = DIAG_NDRUG[diag[tv]]
        k = np.minimum(rng.choice([1, 2], nt, p=[.45, .55]), nd)
        vv = np.repeat(np.arange(nt), k)
        j = np.arange(len(vv)) - np.repeat(np.cumsum(k) - k, k)
        st = rng.integers(0, 8, nt)
        item = DIAG_DRUGS[diag[tv[vv]], (st[vv] + j) % nd[vv]]
        parts.append((tv[vv], item, tt[vv] + 3600 * (2 + j), np.where(IT_BOXD[item] == 1, 2, 1).astype(float),
                      np.ones(len(vv))))
        vasc = np.isin(diag[tv], [DG["I63.900"], DG["I25.100"], DG["I21.900"]])
        inj = np.where(vasc, IT["xst"], np.where(rng.random(nt) < 0.5, IT["pant"], IT["ceft"]))
        parts.append((tv, inj, tt + 4 * 3600, np.full(nt, 2.0), np.ones(nt)))
        inf = rng.random(nt) < 0.55
        parts.append((tv[inf], np.full(inf.sum(), IT["infu"]), tt[inf] + 5400, np.ones(inf.sum()),
                      np.full(inf.sum(), np.nan)))
        parts.append((tv[inf], np.full(inf.sum(), IT["ivset"]), tt[inf] + 5410, np.ones(inf.sum()),
                      np.full(inf.sum(), np.nan)))
        a = np.arange(n)
        nan_n = np.full(n, np.nan)
        parts.append((a, np.full(n, IT["cbc"]), begin + 1800, np.ones(n), nan_n))
        parts.append((a, np.full(n, IT["bioc"]), begin + 1830, np.ones(n), nan_n))
        for key, p in (("ct", .4), ("ecg", .5), ("bus", .3)):
            m = rng.random(n) < p
            parts.append((a[m], np.full(m.sum(), IT[key]), begin[m] + 2400, np.ones(m.sum()),
                          np.full(m.sum(), np.nan)))
        s = DIAG_SURG[diag]
        m = s >= 0
        ts = np.where(los > 1, day0 + DAY + 9 * 3600, begin + 7200)
        parts.append((a[m], s[m], ts[m], np.ones(m.sum()), np.full(m.sum(), np.nan)))
        m2 = m & (s == IT["fixo"])
        parts.append((a[m2], np.full(m2.sum(), IT["plat"]), ts[m2] + 60, np.ones(m2.sum()),
                      np.full(m2.sum(), np.nan)))
        return self._assemble(parts, doc, dept)

    @staticmethod
    def _assemble(parts, doc, dept) -> dict:
        v = np.concatenate([p[0] for p in parts]).astype(np.int64)
        item = np.concatenate([p[1] for p in parts]).astype(np.int32)
        return {"v": v, "item": item, "t": np.concatenate([p[2] for p in parts]).astype(np.int64),
                "cnt": np.concatenate([p[3] for p in parts]).astype(float),
                "pric": IT_PRICE[item].copy(),
                "prd": np.concatenate([p[4] for p in parts]).astype(float),
                "doc": np.asarray(doc)[v], "dept": np.asarray(dept)[v]}

    # ---------------------------------------------------------------- visit adders
    def add_opd(self, psn, inst, begin, diag, dept=None, med=None, tag=TAG_BG, doc=None, opter=None,
                cert=None, k_drugs=None, prd=None, drugs=None):
        psn, inst, begin, diag = (np.asarray(x) for x in (psn, inst, begin, diag))
        n = len(psn)
        dept = DIAG_DEPT[diag] if dept is None else np.asarray(dept)
        if doc is None:
            doc, dept = self.pick_doc(inst, dept)
        med = np.full(n, M11) if med is None else np.broadcast_to(med, (n,))
        ln = self.lines_opd(begin, diag, doc, dept, med, inst, k_drugs, prd, drugs)
        return self._add(psn, inst, med, begin, begin, doc, dept, diag, opter, cert, tag, ln)

    def add_phar(self, psn, inst, begin, items, prescriber=None, tag=TAG_BG, opter=None, cert=None, prd=None,
                 diag=None):
        psn, inst, begin = (np.asarray(x) for x in (psn, inst, begin))
        n = len(psn)
        ph, _ = self.pick_doc(inst, np.full(n, D["Y01"]))
        ln = self.lines_phar(begin, ph, items, prescriber, prd)
        diag = np.full(n, -1) if diag is None else diag
        return self._add(psn, inst, np.full(n, M41), begin, begin, ph, np.full(n, D["Y01"]), diag, opter, cert,
                         tag, ln)

    def add_ipd(self, psn, inst, begin, los, diag, tag=TAG_BG, doc=None, dept=None, med=M21, empty_frac=None,
                end=None):
        psn, inst, begin, los, diag = (np.asarray(x) for x in (psn, inst, begin, los, diag))
        n = len(psn)
        dept = DIAG_DEPT[diag] if dept is None else np.asarray(dept)
        if doc is None:
            doc, dept = self.pick_doc(inst, dept)
        ln = self.lines_ipd(begin, los, diag, doc, dept, empty_frac)
        if end is None:
            end = (begin // DAY + los) * DAY + 9 * 3600 + self.rng.integers(0, 7200, n)
        return self._add(psn, inst, np.broadcast_to(med, (n,)), begin, end, doc, dept, diag, None, None, tag, ln)

    def _add(self, psn, inst, med, begin, end, doc, dept, diag, opter, cert, tag, ln):
        n = len(psn)
        if opter is None:
            opter = self.pick_op(inst)
        if cert is None:
            cert = self.rng.choice([1, 3, 2], n, p=[.5, .4, .1])
        v = {"psn": psn, "inst": inst, "med": np.asarray(med), "begin": begin, "end": end, "cert": cert,
             "doc": doc, "dept": dept, "diag": diag, "opter": np.broadcast_to(opter, (n,)),
             "tag": np.full(n, tag)}
        return self.B.add(v, ln)

    def scheme(self, kind: str, persons, practitioners, institutions, note: str) -> int:
        self.schemes.append({"scheme_id": f"indep-{kind.replace(':', '-')}-{len(self.schemes):03d}",
                             "kind": kind, "p": list(persons), "d": list(practitioners),
                             "i": list(institutions), "note": note})
        return len(self.schemes) - 1

    def lookalike(self, kind: str, persons, institutions, lead_kinds: list[str], note: str) -> None:
        self.lookalikes.append({"kind": kind, "p": list(persons), "i": list(institutions),
                                "lead_kinds": lead_kinds, "note": note})
        self.used[np.asarray(list(persons), dtype=int)] = True

    # ---------------------------------------------------------------- background
    def hosp_dept(self, psn: np.ndarray, table: list[tuple[str, float]], child: list[tuple[str, float]]):
        """Department per visit from age/sex-dependent weights (no obstetrics for men, no urology for women)."""
        rng = self.rng
        codes = [c for c, _ in table]
        w = np.tile(np.array([x for _, x in table]), (len(psn), 1))
        age, sex = self.age[psn], self.sex[psn]
        if "A0501" in codes:
            w[:, codes.index("A0501")] *= (sex == 2) & (age >= 18) & (age <= 45)
        if "A0403" in codes:
            w[:, codes.index("A0403")] *= (sex == 1) & (age >= 45)
        kid = age < 14
        cw = np.zeros(len(codes))
        for c, x in child:
            cw[codes.index(c)] = x
        w[kid] = cw
        cum = np.cumsum(w, 1)
        u = rng.random(len(psn)) * cum[:, -1]
        k = (cum < u[:, None]).sum(1)
        return np.array([D[c] for c in codes])[k]

    def background(self) -> None:
        rng, N, W = self.rng, self.N, self.W
        yrs = W / 365.0
        age = self.age
        # general outpatient visits
        rate = np.select([age < 6, age < 15, age < 40, age < 60], [4.8, 2.8, 2.4, 3.3], 4.6) * self.frail
        psn = np.repeat(np.arange(N), rng.poisson(rate * yrs))
        m = len(psn)
        begin = rng.integers(0, W, m) * DAY + self.hour(m, "opd")
        types = rng.choice([CLIN, SEC, TERT, PRIV], m, p=[.45, .22, .2, .13])
        inst = self.pick_inst(psn, types)
        tab = [("A03", .42), ("A04", .1), ("A0406", .14), ("A20", .06), ("A19", .03), ("A0305", .03),
               ("A0501", .15), ("A0403", .07), ("A07", 0.0)]
        dept = self.hosp_dept(psn, tab, [("A07", .85), ("A20", .15)])
        clin = self.i_type[inst] == CLIN
        dept[clin] = np.where(rng.random(clin.sum()) < .8, D["A02"], D["A03"])
        dept = self.eff_dept[inst, dept]
        diag = self.diag_for(dept, psn, OPD_DIAGS)
        self.add_opd(psn, inst, begin, diag, dept=dept)
        # duplicate-looking lab lines on some visits, at a different time (repeat test): legitimate noise
        last = self.B.last_lines()
        dup = np.flatnonzero((last["item"] == IT["cbc"]) & (rng.random(len(last["item"])) < 0.03))
        extra = {k: a[dup].copy() for k, a in last.items()}
        extra["t"] = extra["t"] + rng.integers(2, 6, len(dup)) * 3600
        self.B.add_lines(extra)
        # emergencies
        psn = np.repeat(np.arange(N), rng.poisson(0.25 * self.frail * yrs))
        m = len(psn)
        begin = rng.integers(0, W, m) * DAY + self.hour(m, "emg")
        inst = self.pick_inst(psn, rng.choice([SEC, TERT], m, p=[.5, .5]))
        dept = np.full(m, D["A20"])
        self.add_opd(psn, inst, begin, self.diag_for(dept, psn, OPD_DIAGS), dept=dept, med=M13)
        # over-the-counter pharmacy purchases
        psn = np.repeat(np.arange(N), rng.poisson(3.1 * self.frail * yrs))
        m = len(psn)
        begin = rng.integers(0, W, m) * DAY + self.hour(m, "phar")
        inst = self.pick_inst(psn, np.full(m, PHAR), local=0.85)
        self.add_phar(psn, inst, begin, self.otc_items(m))
        self._chronic()
        self._inpatient()

    def otc_items(self, m: int) -> np.ndarray:
        k = self.rng.choice([1, 2, 3], m, p=[.5, .35, .15])
        st = self.rng.integers(0, len(OTC), m)
        items = np.full((m, 3), -1)
        for j in range(3):
            items[:, j] = np.where(k > j, OTC[(st + j * 3) % len(OTC)], -1)
        return items

    def _chronic(self) -> None:
        rng, N, W = self.rng, self.N, self.W
        age = self.age
        chronic = ((age >= 40) & (rng.random(N) < 0.18)) | ((age >= 20) & (age < 40) & (rng.random(N) < 0.03))
        p = np.flatnonzero(chronic)
        nc = len(p)
        cond = rng.choice(len(C.CHRONIC), nc, p=[.3, .3, .15, .08, .07, .1])
        cond[(cond == 5) & (self.sex[p] == 2)] = 1
        drugs = np.full((nc, 2), -1)
        for ci, (_, sets) in enumerate(C.CHRONIC):
            m = np.flatnonzero(cond == ci)
            pick = rng.integers(0, len(sets), len(m))
            for si, st in enumerate(sets):
                mm = m[pick == si]
                for j, key in enumerate(st):
                    drugs[mm, j] = IT[key]
        cdiag = np.array([DG[c[0]] for c in C.CHRONIC])[cond]
        hosp = self.pick_inst(p, rng.choice([SEC, TERT], nc))
        ddept = np.where(cond == 5, D["A0403"], D["A03"])
        doc, ddept = self.pick_doc(hosp, ddept)
        ph1 = self.pick_inst(p, np.full(nc, PHAR), local=0.95)
        ph2 = np.where(rng.random(nc) < 0.4, self.pick_inst(p, np.full(nc, PHAR), local=0.95), ph1)
        self.chronic_p, self.chronic_drugs, self.chronic_doc = p, drugs, doc
        self.chronic_key = (np.isin(drugs, [IT[k] for k in ("insg", "sita", "clop", "riva", "ente")])).any(1)
        off = rng.integers(0, 30, nc)
        nref = np.maximum(0, (W - 1 - off) // 30 + 1)
        c = np.repeat(np.arange(nc), nref)
        k = np.arange(len(c)) - np.repeat(np.cumsum(nref) - nref, nref)
        day = np.clip(off[c] + k * 30 + rng.integers(-2, 3, len(c)), 0, W - 1)
        at_h = rng.random(len(c)) < 0.4
        h = np.flatnonzero(at_h)
        self.add_opd(p[c[h]], hosp[c[h]], day[h] * DAY + self.hour(len(h), "opd"), cdiag[c[h]], dept=ddept[c[h]],
                     med=M14, doc=doc[c[h]], drugs=drugs[c[h]])
        f = np.flatnonzero(~at_h)
        ph = np.where(rng.random(len(f)) < 0.5, ph1[c[f]], ph2[c[f]])
        self.add_phar(p[c[f]], ph, day[f] * DAY + self.hour(len(f), "phar"), drugs[c[f]],
                      prescriber=doc[c[f]], diag=cdiag[c[f]])

    def _inpatient(self) -> None:
        rng, N, W = self.rng, self.N, self.W
        yrs = W / 365.0
        age, sex = self.age, self.sex
        rate = np.select([age < 15, age < 40, age < 60, age < 80], [.08, .06, .12, .3], .5) * self.frail
        psn = np.repeat(np.arange(N), rng.poisson(rate * yrs))
        m = len(psn)
        inst = self.pick_inst(psn, rng.choice([TERT, SEC, PRIV], m, p=[.45, .38, .17]))
        tab = [("A03", .45), ("A04", .15), ("A0406", .17), ("A19", .06), ("A0305", .03), ("A0403", .06),
               ("A20", .08), ("A07", 0.0)]
        dept = self.eff_dept[inst, self.hosp_dept(psn, tab, [("A07", .9), ("A0406", .1)])]
        diag = self.diag_for(dept, psn, IPD_DIAGS)
        self._stays(psn, inst, diag, dept)
        # legitimate readmissions (complications, relapses): same hospital and diagnosis 5-14 days later
        r = np.flatnonzero(rng.random(m) < 0.012)
        end_day = self.B.vis["end"][-1][r] // DAY
        ok = end_day + 20 < self.W
        r, end_day = r[ok], end_day[ok]
        if len(r):
            self._stays(psn[r], inst[r], diag[r], self.B.vis["dept"][-1][r], day=end_day + rng.integers(5, 15, len(r)))
        # deliveries
        f = (sex == 2) & (age >= 20) & (age <= 40)
        psn = np.repeat(np.flatnonzero(f), rng.poisson(0.05 * yrs, f.sum()))
        m = len(psn)
        inst = self.pick_inst(psn, rng.choice([TERT, SEC, PRIV], m, p=[.5, .4, .1]))
        diag = np.where(rng.random(m) < .6, DG["O80.000"], DG["O82.000"])
        self._stays(psn, inst, diag, np.full(m, D["A0501"]), med=np.where(rng.random(m) < .5, M52, M21))

    def _stays(self, psn, inst, diag, dept, med=M21, tag=TAG_BG, empty_frac=None, day=None, doc=None, los=None):
        rng = self.rng
        m = len(psn)
        lm = DIAG_LOS[diag]
        if los is None:
            los = np.clip(rng.poisson(lm[:, 0]), lm[:, 1], lm[:, 2])
        if day is None:
            day = (rng.random(m) * np.maximum(1, self.W - 1 - los)).astype(int)
        begin = day * DAY + self.hour(m, "adm")
        return self.add_ipd(psn, inst, begin, los, diag, tag=tag, doc=doc, dept=dept, med=med,
                            empty_frac=empty_frac)

    # ---------------------------------------------------------------- look-alikes
    def near_inst(self, t: int, city: int, district: int | None = None) -> int:
        m = (self.i_type == t) & (self.i_city == city)
        if district is not None and ((m & (self.i_dist == district)).any()):
            m &= self.i_dist == district
        return int(self.rng.choice(np.flatnonzero(m)))

    def lookalikes_all(self) -> None:
        rng, N, W = self.rng, self.N, self.W
        # 1. families sharing a phone and an address who come together
        hsize = np.bincount(self.hh)
        ok = np.flatnonzero(hsize >= 3)
        nf = max(6, N // 3000)
        fams = []
        for h in rng.permutation(ok):
            mem = np.flatnonzero(self.hh == h) if len(fams) < nf else None
            if mem is None:
                break
            if self.used[mem].any() or (self.death[mem] >= 0).any():
                continue
            self.mob[mem] = self.mob[mem[0]]
            self.nomob[mem] = False
            self.used[mem] = True
            fams.append(mem)
        for mem in fams:
            c, d = int(self.city[mem[0]]), int(self.dist[mem[0]])
            for _ in range(rng.integers(3, 7)):
                t = rng.choice([CLIN, PHAR, SEC])
                inst = self.near_inst(t, c, d)
                who = mem[rng.random(len(mem)) < 0.8]
                if len(who) < 2:
                    who = mem[:2]
                b0 = rng.integers(0, W) * DAY + self.hour(1, "opd")[0]
                begin = b0 + np.arange(len(who)) * rng.integers(120, 600)
                if t == PHAR:
                    self.add_phar(who, np.full(len(who), inst), begin, self.otc_items(len(who)), tag=TAG_LOOK)
                else:
                    dept = np.where(self.age[who] < 14, D["A07"], D["A03"]) if t == SEC else np.full(len(who), D["A02"])
                    dept = self.eff_dept[np.full(len(who), inst), dept]
                    diag = np.where(self.age[who] < 14, DG["J45.900"], DG["J06.900"])
                    self.add_opd(who, np.full(len(who), inst), begin, diag, dept=dept, tag=TAG_LOOK)
        self.lookalike("family_visits_together", np.concatenate(fams), [],
                       ["collusion_ring", "drug_resale", "card_skimming", "rule:impersonation"],
                       "households sharing one phone and address, visiting the same clinic/pharmacy minutes apart")
        # 2. chronic patients refilling key drugs monthly at one or two pharmacies
        ck = self.chronic_p[self.chronic_key & ~self.used[self.chronic_p] & (self.death[self.chronic_p] < 0)]
        ck = rng.choice(ck, min(len(ck), max(20, N // 1000)), replace=False)
        self.lookalike("chronic_key_drug_refills", ck, [],
                       ["drug_resale", "card_skimming", "rule:over_quantity"],
                       "monthly 28-30 day refills of key drugs from one doctor at one or two pharmacies")
        # 3. big tertiary hospitals
        tert = np.flatnonzero(self.i_type == TERT)
        self.lookalike("big_tertiary_hospital", [], tert,
                       ["collusion_ring", "rule:duplicate_charge", "rule:split_admission", "rule:discharge_growth",
                        "anomaly:institution"], "high-volume tertiary hospitals with many same-day admissions")
        self.inst_used = set(tert.tolist()) | set(self.busy_ph.tolist())
        # 4. busy pharmacies with an evening rush (commuters), many distinct cards within minutes
        for ph in self.busy_ph:
            c, d = int(self.i_city[ph]), int(self.i_dist[ph])
            loc = np.flatnonzero((self.dist == d) & (self.death < 0))
            nights = rng.choice(W, min(W, 60), replace=False)
            for day in nights:
                who = _some(rng, loc, rng.integers(6, 14))
                begin = day * DAY + 18 * 3600 + np.sort(rng.integers(0, 5400, len(who)))
                self.add_phar(who, np.full(len(who), ph), begin, self.otc_items(len(who)), tag=TAG_LOOK)
        self.lookalike("busy_pharmacy_peak_hours", [], self.busy_ph,
                       ["card_skimming", "anomaly:pharmacy", "drug_resale"],
                       "pharmacies next to big hospitals, 5x the custom, evening rush of local cardholders")
        # 5. outbreak / accident: many admitted at one hospital on one day, once
        for _ in range(1 + N // 150000):
            h = int(rng.choice(np.flatnonzero(np.isin(self.i_type, [SEC, TERT]) & (self.i_city == 0))))
            emp = C.EMPLOYERS[int(rng.integers(0, len(C.EMPLOYERS)))]
            who = self.free(int(rng.integers(15, 35)), 18, 60, mask=self.city == 0)
            self.emp[who] = emp
            day = np.full(len(who), rng.integers(20, W - 20))
            diag = np.full(len(who), DG["A05.900"])
            self._stays(who, np.full(len(who), h), diag, np.full(len(who), D["A20"]), tag=TAG_LOOK, day=day)
            self.inst_used.add(h)
            self.lookalike("outbreak_mass_admission", who, [h], ["collusion_ring", "rule:split_admission"],
                           f"food poisoning at {emp}: {len(who)} admitted on one day, once")
        # 6. chemotherapy cycles (every 14 days, 2-day stays) and dialysis three times a week
        nchemo = max(5, N // 4000)
        who = self.free(nchemo, 35, 75)
        hs = []
        for p_ in who:
            h = self.near_inst(TERT, int(self.city[p_]))
            hs.append(h)
            ncyc = int(rng.integers(6, 12))
            start = int(rng.integers(0, max(1, W - ncyc * 14 - 5)))
            days = np.minimum(start + np.arange(ncyc) * 14, W - 3)
            doc, dept = self.pick_doc(np.array([h]), np.array([D["A19"]]))
            self._stays(np.full(ncyc, p_), np.full(ncyc, h), np.full(ncyc, DG["Z51.100"]), np.full(ncyc, dept[0]),
                        tag=TAG_LOOK, day=days, doc=np.full(ncyc, doc[0]), los=np.full(ncyc, 2))
        self.lookalike("chemotherapy_cycles", who, sorted(set(hs)), ["rule:split_admission"],
                       "Z51.1 two-day stays every 14 days at the same tertiary oncology ward")
        ndial = max(4, N // 6000)
        who = self.free(ndial, 40, 80)
        hs = []
        for p_ in who:
            h = self.near_inst(TERT, int(self.city[p_]))
            hs.append(h)
            days = np.arange(int(rng.integers(0, 3)), W, 7)
            days = np.sort(np.concatenate([days, days + 2, days + 4]))
            days = days[days < W]
            n = len(days)
            doc, dept = self.pick_doc(np.full(n, h), np.full(n, D["A0305"]))
            drugs = np.full((n, 1), IT["epo"])
            self.add_opd(np.full(n, p_), np.full(n, h), days * DAY + 7 * 3600 + rng.integers(0, 1800, n),
                         np.full(n, DG["Z49.100"]), dept=dept, med=M14, doc=doc, tag=TAG_LOOK, drugs=drugs,
                         prd=np.full(n, 2.0))
        self.lookalike("dialysis_three_times_weekly", who, [],
                       ["rule:split_admission", "drug_resale", "card_skimming"],
                       "haemodialysis sessions 3x a week with EPO, same unit all year")
        # 7. a hospital opening a new ward: discharges grow ~+25% gradually (added after the background)
        cand = np.flatnonzero((self.i_type == SEC) & (self.i_city == 0))
        self.new_ward = int(rng.choice(cand))
        self.inst_used.add(self.new_ward)
        # 8. travellers: a visit in another city a day later
        ntr = max(8, N // 2500)
        who = self.free(ntr, 20, 70)
        for p_ in who:
            c = int(self.city[p_])
            far = 2 if c != 2 else 0
            a = self.near_inst(PHAR, c, int(self.dist[p_]))
            b = self.near_inst(int(rng.choice([PHAR, CLIN])), far)
            t = int(rng.integers(0, W - 3)) * DAY + int(self.hour(1, "phar")[0])
            self.add_phar(np.array([p_]), np.array([a]), np.array([t]), self.otc_items(1), tag=TAG_LOOK)
            t2 = t + int(rng.integers(22, 34)) * 3600
            if self.i_type[b] == PHAR:
                self.add_phar(np.array([p_]), np.array([b]), np.array([t2]), self.otc_items(1), tag=TAG_LOOK)
            else:
                self.add_opd(np.array([p_]), np.array([b]), np.array([t2]), np.array([DG["J06.900"]]),
                             dept=np.array([D["A02"]]), tag=TAG_LOOK)
        self.lookalike("traveller_next_day_other_city", who, [], ["rule:impersonation"],
                       "a purchase at home, then a visit 500+ km away 22-34 hours later")
        # 9. (own) nursing home: one clinic operator settles all residents' monthly refills in a morning burst
        clin = int(rng.choice(np.flatnonzero((self.i_type == CLIN) & (self.i_city == 0))))
        self.inst_used.add(clin)
        res = self.free(int(rng.integers(20, 40)), 75, 95, mask=self.dist == self.i_dist[clin])
        self.addr[res] = f"四川省{self.d_name[self.i_dist[clin]]}颐和路88号康乐养老院"
        phone = self.mob[res[0]]
        self.mob[res[rng.random(len(res)) < 0.5]] = phone
        opter = self.op_start[clin]
        rdrugs = np.array([IT[k] for k in ("amlo", "metf", "aspi", "ator", "clop", "nife")])
        dg = np.array([DG[k] for k in ("I10.x00", "E11.900", "I25.100", "I25.100", "I25.100", "I10.x00")])
        pick = rng.integers(0, len(rdrugs), len(res))
        doc, dept = self.pick_doc(np.array([clin]), np.array([D["A02"]]))
        for mth in range(self.months):
            day = min(W - 1, mth * 30 + int(rng.integers(3, 8)))
            n = len(res)
            begin = day * DAY + 9 * 3600 + np.cumsum(rng.integers(60, 200, n))
            self.add_opd(res, np.full(n, clin), begin, dg[pick], dept=np.full(n, dept[0]), med=M14,
                         doc=np.full(n, doc[0]), opter=opter, tag=TAG_LOOK, drugs=rdrugs[pick][:, None],
                         prd=np.full(n, 30.0))
        self.lookalike("nursing_home_batch_refills", res, [clin], ["card_skimming", "collusion_ring", "drug_resale"],
                       "residents of one nursing home (shared address/phone) refilled monthly in one morning burst "
                       "by one cashier, all living in the clinic's own district")
        # 10. transfers: discharged in the morning, admitted elsewhere the same afternoon (touching, not overlapping)
        ntf = max(5, N // 10000)
        who = self.free(ntf, 50, 85)
        for p_ in who:
            c = int(self.city[p_])
            a = self.near_inst(int(rng.choice([SEC, PRIV])), c)
            b = self.near_inst(TERT, c)
            day = int(rng.integers(5, W - 30))
            los = int(rng.integers(4, 9))
            diag = np.array([DG["I63.900"]])
            begin = np.array([day * DAY + 10 * 3600])
            end = np.array([(day + los) * DAY + 9 * 3600 + 1800])
            self.add_ipd(np.array([p_]), np.array([a]), begin, np.array([los]), diag, tag=TAG_LOOK, end=end)
            self.add_ipd(np.array([p_]), np.array([b]), end + int(rng.integers(2, 5)) * 3600,
                         np.array([int(rng.integers(6, 12))]), diag, tag=TAG_LOOK)
        self.lookalike("hospital_transfer_same_day", who, [], ["rule:overlapping_stays"],
                       "discharged from one hospital and admitted to a tertiary hospital hours later")
        # 11. deaths in hospital: the last stay ends on the day of death
        dead = np.flatnonzero((self.death >= 15) & (self.age >= 60) & ~self.used)
        dead = rng.choice(dead, min(len(dead), max(5, len(dead) // 3)), replace=False)
        los = rng.integers(3, 12, len(dead))
        inst = self.pick_inst(dead, rng.choice([SEC, TERT], len(dead)))
        diag = rng.choice([DG["I63.900"], DG["C34.900"], DG["J18.900"], DG["I21.900"]], len(dead))
        begin = (self.death[dead] - los) * DAY + self.hour(len(dead), "adm")
        end = self.death[dead] * DAY + rng.integers(6, 20, len(dead)) * 3600
        self.add_ipd(dead, inst, begin, los, diag, tag=TAG_LOOK, end=end)
        self.used[dead] = True
        self.lookalike("death_in_hospital", dead, [], ["rule:after_death"],
                       "the final stay ends (discharge = death) on the day of death")

    def new_ward_growth(self) -> None:
        """+25% discharges spread gradually over the year at one secondary hospital (legitimate)."""
        rng = self.rng
        h = self.new_ward
        base = self.stays_at(h) / max(1, self.months)
        ms = self.month_starts()
        who_all = []
        for mth in range(self.months):
            n = int(round(base * 0.3 * mth / max(1, self.months - 1)))
            if n == 0:
                continue
            who = self.free(n, 30, 80, mask=self.city == self.i_city[h])
            who_all.extend(who.tolist())
            day = rng.integers(ms[mth], ms[mth + 1] - 12, n)
            diag = rng.choice([DG["I63.900"], DG["J18.900"], DG["M51.200"]], n)
            self._stays(who, np.full(n, h), diag, DIAG_DEPT[diag], tag=TAG_LOOK, day=day)
        self.lookalike("new_ward_gradual_growth", who_all, [h], ["rule:discharge_growth"],
                       f"new ward: discharges rise gradually to about +30% by the last month (base {base:.1f}/month)")

    def stays_at(self, inst: int) -> int:
        """Inpatient stays added so far at one institution."""
        v = self.B.vis
        return sum(int(((i == inst) & INPAT[m]).sum()) for i, m in zip(v["inst"], v["med"], strict=True))

    def month_starts(self) -> np.ndarray:
        ms = (np.datetime64("2025-01") + np.arange(self.months + 1)).astype("datetime64[D]")
        return (ms - T0.astype("datetime64[D]")).astype(int)

    # ---------------------------------------------------------------- planted schemes
    def pick_insts(self, types: list[int], n: int, need_dept: str | None = None) -> np.ndarray:
        """n institutions of the given types, least used by other schemes first, never a look-alike's."""
        ok = np.isin(self.i_type, types) & ~np.isin(np.arange(self.NI), list(self.look_inst))
        if need_dept:
            ok &= self.doc_cnt[:, D[need_dept]] > 0
        cand = np.flatnonzero(ok)
        order = cand[np.lexsort((self.rng.random(len(cand)), self.inst_load[cand]))]
        out = order[np.arange(n) % len(order)]
        self.inst_load[out] += 1
        self.inst_used.update(out.tolist())
        return out

    def schemes_all(self) -> None:
        k = self.k
        self.look_inst = set(self.inst_used)
        self.inst_load = np.zeros(self.NI, int)
        self.s_collusion(k)
        self.s_skimming(k)
        self.s_resale(k)
        self.s_split(k)
        self.s_bed_hanging(k)
        self.s_impersonation(k)
        self.s_gender(k)
        self.s_after_death(k)
        self.s_overlap(k)
        self.s_over_quantity(k)
        self.s_over_price(k)
        self.s_duplicate(k)
        self.s_growth(k)

    def s_collusion(self, k: int) -> None:
        rng, W = self.rng, self.W
        hosp_all = np.flatnonzero(np.isin(self.i_type, [SEC, PRIV]) & ~np.isin(np.arange(self.NI),
                                                                                list(self.inst_used)))
        for r in range(k):
            style = ("rotating", "multi_hospital", "tight")[r % 3]
            c = int(rng.integers(0, 3)) if r >= 3 else r % 3
            fresh = hosp_all[~np.isin(hosp_all, list(self.inst_used))]
            hosp = fresh[self.i_city[fresh] == c]
            if len(hosp) < 3:
                hosp = fresh if len(fresh) >= 3 else hosp_all
            nh = int(rng.integers(2, 4)) if style == "multi_hospital" else 1
            hs = _some(rng, hosp, nh)
            dcode = str(rng.choice(["A03", "A0406"]))
            diags = [DG[x] for x in (["I63.900", "I25.100", "J44.100"] if dcode == "A03" else
                                     ["M51.200", "M17.900"])]
            docs_by_h = {int(h): self.pick_doc(np.full(int(rng.integers(1, 3)), h), np.full(1, D[dcode]))[0]
                         for h in hs}
            pool = {"rotating": (12, 41), "multi_hospital": (10, 19), "tight": (5, 11)}[style]
            members = self.free(int(rng.integers(*pool)), 30, 75, mask=self.city == self.i_city[hs[0]])
            n = len(members)
            # recruiter's phone and a shared rented address on some members
            rec = members[0]
            sh = members[1:][rng.random(n - 1) < 0.35]
            self.mob[sh] = self.mob[rec]
            self.nomob[sh] = False
            sa = members[1:][rng.random(n - 1) < 0.2]
            self.addr[sa] = self.addr[rec]
            grid = np.arange(10, W - 25, 21)
            if style == "tight":
                ne = min(len(grid), int(rng.integers(4, 9)))
            elif style == "rotating":
                ne = min(len(grid), int(np.ceil(n * rng.uniform(2, 3) / 5)))
            else:
                ne = min(len(grid), int(np.ceil(n * rng.uniform(2.5, 3.5) / 5.5)))
            days = np.sort(rng.choice(grid, ne, replace=False)) + rng.integers(0, 5, ne)
            used = np.zeros(n)
            los0 = int(rng.integers(7, 11))
            sid = self.scheme("collusion_ring", [], [], [], "")
            all_docs, ev_n = set(), 0
            for e, day in enumerate(days):
                if style == "tight":
                    who = np.flatnonzero(rng.random(n) < 0.9)
                    if len(who) < n - 1:
                        who = np.arange(n)
                else:
                    b = int(rng.integers(3, 8)) if style == "rotating" else int(rng.integers(4, 8))
                    order = np.lexsort((rng.random(n), used))
                    who = order[:min(b, n)]
                used[who] += 1
                h = int(hs[e % nh])
                docs = docs_by_h[h]
                m = len(who)
                dd = day + (rng.integers(-1, 2, m) if style != "tight" else rng.choice([0, 0, 0, 1], m))
                diag = np.where(rng.random(m) < 0.8, diags[0], rng.choice(diags, m))
                los = np.clip(los0 + rng.integers(-1, 2, m), 3, 14)
                doc = docs[rng.integers(0, len(docs), m)]
                all_docs.update(doc.tolist())
                self._stays(members[who], np.full(m, h), diag, np.full(m, self.doc_dept[doc[0]]), tag=sid,
                            day=dd, doc=doc, los=los)
                ev_n += m
            self.inst_used.update(hs.tolist())
            self.inst_load[hs] += 1
            self.schemes[sid].update(p=members.tolist(), d=sorted(all_docs), i=hs.tolist(),
                                     note=f"{style} ring: pool of {n}, {ne} admission batches, {ev_n} stays, "
                                          f"{len(all_docs)} doctor(s), recruiter phone shared by {len(sh)}")

    def s_skimming(self, k: int) -> None:
        rng = self.rng
        mid = np.array([IT[x] for x in ("cele", "cefc", "lhqw", "omep", "nife", "ator", "tams", "calc", "prog")])
        for r in range(k):
            style = ("pharmacy", "clinic", "gang")[r % 3]
            if style == "gang":
                first = self.pick_insts([PHAR], 1)[0]
                same = np.flatnonzero((self.i_type == PHAR) & (self.i_city == self.i_city[first])
                                      & ~np.isin(np.arange(self.NI), list(self.inst_used)))
                more = rng.choice(same, min(len(same), int(rng.integers(1, 3))), replace=False)
                insts = np.r_[first, more]
                self.inst_used.update(insts.tolist())
                self.inst_load[insts] += 1
            else:
                insts = self.pick_insts([PHAR] if style == "pharmacy" else [CLIN], 1)
            ops = self.op_start[insts] + self.op_n[insts] - 1
            ncards = int(rng.integers(25, 60))
            victims = self.free(ncards, 20, 80, mask=~np.isin(self.dist, self.i_dist[insts]) & (self.frail < 0.7)
                                & (self.city == self.i_city[insts[0]]))
            sid = self.scheme("card_skimming", victims, [], insts, "")
            nb = int(rng.integers(8, 15))
            uses = np.zeros(ncards)
            nv = 0
            for b in range(nb):
                j = b % len(insts)
                inst, op = int(insts[j]), int(ops[j])
                m = int(rng.integers(5, 13))
                who = np.lexsort((rng.random(ncards), uses))[:m]
                uses[who] += 1
                day = int(rng.integers(0, self.W))
                begin = day * DAY + int(rng.integers(20 * 3600 + 1800, 22 * 3600 + 1800)) + np.cumsum(
                    rng.integers(60, 400, m))
                if self.i_type[inst] == PHAR:
                    items = np.full((m, 3), -1)
                    items[:, 0] = rng.choice(mid, m)
                    items[:, 1] = np.where(rng.random(m) < .7, rng.choice(mid, m), -1)
                    items[:, 1] = np.where(items[:, 1] == items[:, 0], -1, items[:, 1])
                    self.add_phar(victims[who], np.full(m, inst), begin, items, tag=sid, opter=op,
                                  cert=np.full(m, 3))
                else:
                    diag = rng.choice([DG["J06.900"], DG["M54.500"], DG["K29.700"]], m)
                    self.add_opd(victims[who], np.full(m, inst), begin, diag, dept=np.full(m, D["A02"]), tag=sid,
                                 opter=op, cert=np.full(m, 3))
                nv += m
            self.schemes[sid]["note"] = (f"{style}: cashier {self.op_code[ops[0]]} settled {nv} visits on "
                                         f"{ncards} cards from other districts in {nb} night bursts (20:30-23:30)")

    def s_resale(self, k: int) -> None:
        rng, W = self.rng, self.W
        keyd = [("insg", "E11.900"), ("clop", "I25.100"), ("nbp", "I63.900"), ("riva", "I48.x00"),
                ("ente", "B18.100"), ("sita", "E11.900")]
        for r in range(k):
            family = r % 2 == 1
            leader = self.free(1, 35, 65)[0]
            c = int(self.city[leader])
            hosp = _some(rng, np.flatnonzero(np.isin(self.i_type, [SEC, TERT, PRIV]) & (self.i_city == c)),
                         rng.integers(3, 6))
            pharm = _some(rng, np.flatnonzero((self.i_type == PHAR) & (self.i_city == c)), rng.integers(3, 5))
            ndoc = int(rng.integers(4, 8))
            dh = hosp[np.arange(ndoc) % len(hosp)]
            docs, _ = self.pick_doc(dh, np.full(ndoc, D["A03"]))
            drug_pick = rng.choice(len(keyd), int(rng.integers(1, 3)), replace=False)
            members = [leader]
            if family:
                rel = self.free(int(rng.integers(2, 5)), 20, 80, mask=self.city == c)
                self.addr[rel] = self.addr[leader]
                self.hh[rel] = self.hh[leader]
                self.dist[rel] = self.dist[leader]
                shp = rel[rng.random(len(rel)) < 0.5]
                self.mob[shp] = self.mob[leader]
                self.nomob[shp] = False
                members += rel.tolist()
            sid = self.scheme("drug_resale", members, [], [], "")
            nwin = int(rng.integers(1, 3)) if family else 2
            starts = rng.choice(np.arange(0, max(1, W - 95), 100), min(nwin, max(1, (W - 95) // 100 + 1)),
                                replace=False)
            insts, nfill = set(), 0
            for s0 in starts:
                for mi, p_ in enumerate(members):
                    nf = int(rng.integers(10, 17)) if not family else int(
                        rng.integers(6, 10) if mi == 0 else rng.integers(4, 8))
                    day = np.sort(s0 + rng.integers(0, 90, nf))
                    di = rng.integers(0, ndoc, nf)
                    dk = drug_pick[rng.integers(0, len(drug_pick), nf)]
                    items = np.array([IT[keyd[x][0]] for x in dk])
                    diag = np.array([DG[keyd[x][1]] for x in dk])
                    at_h = rng.random(nf) < 0.45
                    h = np.flatnonzero(at_h)
                    if len(h):
                        self.add_opd(np.full(len(h), p_), dh[di[h]], day[h] * DAY + self.hour(len(h), "opd"),
                                     diag[h], dept=self.doc_dept[docs[di[h]]], doc=docs[di[h]],
                                     drugs=items[h][:, None], prd=np.full(len(h), 30.0), tag=sid)
                        insts.update(dh[di[h]].tolist())
                    f = np.flatnonzero(~at_h)
                    if len(f):
                        ph = pharm[rng.integers(0, len(pharm), len(f))]
                        self.add_phar(np.full(len(f), p_), ph, day[f] * DAY + self.hour(len(f), "phar"),
                                      items[f][:, None], prescriber=docs[di[f]], prd=np.full(len(f), 30.0),
                                      diag=diag[f], tag=sid)
                        insts.update(ph.tolist())
                    nfill += nf
            self.schemes[sid].update(i=sorted(insts), note=(
                f"{'family' if family else 'solo'} collector: {len(members)} person(s), {nfill} fills of "
                f"{'/'.join(keyd[x][0] for x in drug_pick)} (30 days each) from {ndoc} prescribers at "
                f"{len(insts)} institutions in {len(starts)} 90-day window(s)"))

    def _local(self, n: int, inst: int, amin: int = 40, amax: int = 85, sex: int | None = None) -> np.ndarray:
        mask = self.city == self.i_city[inst]
        if sex:
            mask = mask & (self.sex == sex)
        return self.free(n, amin, amax, mask=mask)

    def s_split(self, k: int) -> None:
        rng = self.rng
        for inst in self.pick_insts([SEC, PRIV], k):
            pats = self._local(int(rng.integers(8, 16)), inst)
            diags = [DG[x] for x in rng.choice(["I63.900", "J44.100", "M51.200", "I25.100"], 2, replace=False)]
            sid = self.scheme("rule:split_admission", pats, [], [inst], "")
            n = 0
            for p_ in pats:
                ncyc = int(rng.integers(2, 4))
                d = int(rng.integers(0, max(1, self.W - 120)))
                dg = diags[int(rng.integers(0, 2))]
                for _ in range(ncyc):
                    los1, gap, los2 = int(rng.integers(6, 10)), int(rng.integers(1, 9)), int(rng.integers(4, 9))
                    if d + los1 + gap + los2 >= self.W - 1:
                        break
                    self._stays(np.array([p_, p_]), np.array([inst, inst]), np.array([dg, dg]),
                                DIAG_DEPT[[dg, dg]], tag=sid, day=np.array([d, d + los1 + gap]),
                                los=np.array([los1, los2]))
                    n += 2
                    d += los1 + gap + los2 + int(rng.integers(30, 70))
            self.schemes[sid]["note"] = f"{len(pats)} patients discharged and readmitted within 1-8 days, {n} stays"

    def s_bed_hanging(self, k: int) -> None:
        rng = self.rng
        for inst in self.pick_insts([PRIV, SEC], k):
            pats = self._local(int(rng.integers(10, 22)), inst, 55, 88)
            nst = int(rng.integers(15, 32))
            who = np.r_[pats, rng.choice(pats, max(0, nst - len(pats)))]
            los = rng.integers(6, 19, len(who))
            day = np.zeros(len(who), int)
            for p_ in np.unique(who):  # one person's stays apart
                idx = np.flatnonzero(who == p_)
                gaps = rng.integers(25, 60, len(idx))
                start = int(rng.integers(0, max(1, self.W - 20 - int(gaps.sum()))))
                day[idx] = np.minimum(start + np.cumsum(gaps) - gaps[0], self.W - 20)
            diag = rng.choice([DG["M51.200"], DG["I63.900"], DG["M17.900"]], len(who))
            sid = self.scheme("rule:bed_hanging", pats, [], [inst],
                              f"{len(who)} stays of 6-18 nights, ~85% of days billed the bed only")
            self._stays(who, np.full(len(who), inst), diag, DIAG_DEPT[diag], tag=sid, day=day, los=los,
                        empty_frac=np.full(len(who), 0.85))

    def s_impersonation(self, k: int) -> None:
        rng = self.rng
        for r in range(k):
            p_ = self.free(1, 20, 70)[0]
            c = int(self.city[p_])
            far = 2 if c != 2 else 0
            nev = 1 if r % 2 == 0 else int(rng.integers(2, 5))
            sid = self.scheme("rule:impersonation", [p_], [], [], "")
            insts, gaps = set(), []
            for _ in range(nev):
                a = self.near_inst(int(rng.choice([PHAR, CLIN])), c, int(self.dist[p_]))
                b = self.near_inst(int(rng.choice([PHAR, CLIN, SEC])), far)
                t = int(rng.integers(0, self.W)) * DAY + int(rng.integers(9, 17)) * 3600 + int(rng.integers(0, 3600))
                gap = int(rng.integers(30, 110)) * 60
                gaps.append(gap // 60)
                for inst, tt, cert in ((a, t, 1), (b, t + gap, 3)):
                    insts.add(inst)
                    if self.i_type[inst] == PHAR:
                        self.add_phar(np.array([p_]), np.array([inst]), np.array([tt]), self.otc_items(1), tag=sid,
                                      cert=np.array([cert]))
                    else:
                        dept = np.array([D["A02"] if self.i_type[inst] == CLIN else D["A03"]])
                        self.add_opd(np.array([p_]), np.array([inst]), np.array([tt]), np.array([DG["J06.900"]]),
                                     dept=self.eff_dept[np.array([inst]), dept], tag=sid, cert=np.array([cert]))
            dkm = _haversine(self.d_lnt[self.dist[p_]], self.d_lat[self.dist[p_]],
                             C.CITIES[far][3][0][2], C.CITIES[far][3][0][3])
            self.schemes[sid].update(i=sorted(insts), note=(
                f"{nev} impossible pair(s): card used ~{dkm:.0f} km apart within {gaps} minutes"))

    def s_gender(self, k: int) -> None:
        rng = self.rng
        for inst in self.pick_insts([PRIV, SEC], k, need_dept="A0501"):
            nm, nf = int(rng.integers(3, 8)), int(rng.integers(2, 6))
            men = self._local(nm, inst, 22, 60, sex=1)
            women = self._local(nf, inst, 30, 80, sex=2)
            sid = self.scheme("rule:gender_age_mismatch", np.r_[men, women], [], [inst],
                              f"{nm} men billed deliveries (O80/O82), {nf} women billed prostate surgery (N40)")
            dm = rng.choice([DG["O80.000"], DG["O82.000"]], nm)
            self._stays(men, np.full(nm, inst), dm, np.full(nm, D["A0501"]), tag=sid,
                        med=np.where(rng.random(nm) < .5, M52, M21))
            dfm = np.full(nf, DG["N40.x00"])
            self._stays(women, np.full(nf, inst), dfm, np.full(nf, D["A0403"]), tag=sid)

    def s_after_death(self, k: int) -> None:
        rng, W = self.rng, self.W
        for _r in range(k):
            p_ = self.free(1, 55, 90)[0]
            dd = int(rng.integers(int(W * 0.2), int(W * 0.65)))
            self.death[p_] = dd
            n = int(rng.integers(2, 7))
            days = np.sort(rng.integers(dd + 3, W, n))
            ph = self.near_inst(PHAR, int(self.city[p_]), int(self.dist[p_]))
            sid = self.scheme("rule:after_death", [p_], [], [ph], f"{n} purchases on the card 3+ days after death")
            items = np.full((n, 1), IT[rng.choice(["amlo", "metf", "aspi", "ator"])])
            self.add_phar(np.full(n, p_), np.full(n, ph), days * DAY + self.hour(n, "phar"), items, tag=sid)

    def s_overlap(self, k: int) -> None:
        rng = self.rng
        for r in range(k):
            p_ = self.free(1, 40, 85)[0]
            c = int(self.city[p_])
            hs = _some(rng, np.flatnonzero(np.isin(self.i_type, [SEC, PRIV, TERT]) & (self.i_city == c)), 2)
            sid = self.scheme("rule:overlapping_stays", [p_], [], hs, "")
            nev = 1 if r % 2 == 0 else 2
            for e in range(nev):
                d = int(rng.integers(5, self.W // 2 - 20)) + e * (self.W // 2)
                la, lb = int(rng.integers(8, 13)), int(rng.integers(3, 7))
                off = int(rng.integers(2, 5))
                diag = rng.choice([DG["I63.900"], DG["J18.900"], DG["M51.200"]], 2)
                self._stays(np.array([p_, p_]), hs, diag, DIAG_DEPT[diag], tag=sid, day=np.array([d, d + off]),
                            los=np.array([la, lb]))
            self.schemes[sid]["note"] = f"{nev} pair(s) of stays overlapping by several days at two hospitals"

    def s_over_quantity(self, k: int) -> None:
        rng = self.rng
        chron = [("metf", "E11.900"), ("amlo", "I10.x00"), ("ator", "I25.100"), ("nife", "I10.x00"),
                 ("aspi", "I25.100")]
        for _r, inst in enumerate(self.pick_insts([PHAR, CLIN], k)):
            nv = int(rng.integers(25, 50))
            pats = self._local(max(8, nv // 3), inst, 45, 85)
            who = rng.choice(pats, nv)
            day = rng.integers(0, self.W, nv)
            ci = rng.integers(0, len(chron), nv)
            items = np.array([IT[chron[x][0]] for x in ci])[:, None]
            diag = np.array([DG[chron[x][1]] for x in ci])
            prd = rng.choice([60.0, 90.0], nv)
            sid = self.scheme("rule:over_quantity", pats, [], [inst],
                              f"{nv} fills of 60-90 days of chronic drugs (limit 30 per fill)")
            if self.i_type[inst] == PHAR:
                self.add_phar(who, np.full(nv, inst), day * DAY + self.hour(nv, "phar"), items, tag=sid, prd=prd,
                              diag=diag)
            else:
                self.add_opd(who, np.full(nv, inst), day * DAY + self.hour(nv, "opd"), diag,
                             dept=np.full(nv, D["A02"]), med=M14, drugs=items, prd=prd, tag=sid)

    def s_over_price(self, k: int) -> None:
        rng = self.rng
        for inst in self.pick_insts([CLIN, PRIV, PHAR], k):
            nv = int(rng.integers(30, 60))
            pats = self._local(max(10, nv // 2), inst, 18, 85)
            who = rng.choice(pats, nv)
            begin = rng.integers(0, self.W, nv) * DAY + self.hour(nv, "opd")
            sid = self.scheme("rule:over_standard_price", pats, [], [inst], "")
            if self.i_type[inst] == PHAR:
                self.add_phar(who, np.full(nv, inst), begin, self.otc_items(nv), tag=sid)
            else:
                dept = self.eff_dept[np.full(nv, inst), np.full(nv, D["A03"] if self.i_type[inst] == PRIV else
                                                                 D["A02"])]
                self.add_opd(who, np.full(nv, inst), begin, self.diag_for(dept, who, OPD_DIAGS), dept=dept, tag=sid)
            ln = self.B.last_lines()
            fac = rng.uniform(1.15, 1.7, len(ln["item"]))
            ln["pric"][:] = np.round(IT_LIMIT[ln["item"]] * fac, 2)
            self.schemes[sid]["note"] = f"{len(fac)} lines on {nv} visits priced 15-70% above the catalogue limit"

    def s_duplicate(self, k: int) -> None:
        rng = self.rng
        for inst in self.pick_insts([SEC, PRIV, CLIN], k):
            nv = int(rng.integers(25, 50))
            pats = self._local(max(10, nv // 2), inst, 18, 85)
            who = rng.choice(pats, nv)
            begin = rng.integers(0, self.W, nv) * DAY + self.hour(nv, "opd")
            dept = self.eff_dept[np.full(nv, inst), np.full(nv, D["A03"] if self.i_type[inst] != CLIN else D["A02"])]
            sid = self.scheme("rule:duplicate_charge", pats, [], [inst], "")
            gv = self.add_opd(who, np.full(nv, inst), begin, self.diag_for(dept, who, OPD_DIAGS), dept=dept, tag=sid)
            ln = self.B.last_lines()
            doc = ln["doc"][:nv]  # the first part of an outpatient batch is one consultation line per visit
            item = rng.choice([IT["ct"], IT["bus"], IT["bioc"], IT["cbc"]], nv)
            t = begin + 500
            two = np.r_[np.arange(nv), np.arange(nv)]
            self.B.add_lines({"v": gv[two], "item": item[two], "t": t[two], "cnt": np.ones(2 * nv),
                              "pric": IT_PRICE[item[two]], "prd": np.full(2 * nv, np.nan), "doc": doc[two],
                              "dept": dept[two]})
            self.schemes[sid]["note"] = f"{nv} visits with one test billed twice at the same second"

    def s_growth(self, k: int) -> None:
        rng = self.rng
        ms = self.month_starts()
        last = max(1, min(4, self.months // 2))
        for inst in self.pick_insts([SEC, PRIV], k):
            base = self.stays_at(inst) / self.months
            per = max(6, int(round(base * rng.uniform(0.9, 1.4))))
            pats = self._local(per * last, inst, 30, 85)
            sid = self.scheme("rule:discharge_growth", pats, [], [inst], "")
            for j, mth in enumerate(range(self.months - last, self.months)):
                who = pats[j * per:(j + 1) * per]
                day = rng.integers(ms[mth], max(ms[mth] + 1, ms[mth + 1] - 14), per)
                diag = rng.choice([DG["I63.900"], DG["J18.900"], DG["M51.200"], DG["J44.100"]], per)
                self._stays(who, np.full(per, inst), diag, DIAG_DEPT[diag], tag=sid, day=day)
            self.schemes[sid]["note"] = (f"+{per} admissions a month in the last {last} months over a base of "
                                         f"{base:.1f}/month")

    # ---------------------------------------------------------------- clean-up and output
    def cleanup(self, v: dict) -> np.ndarray:
        """Keep-mask: background visits after death, overlapping background stays and visits inside stays go."""
        n = len(v["psn"])
        keep = np.ones(n, bool)
        prot = v["tag"] != TAG_BG
        inpat = INPAT[v["med"]]
        psn64 = v["psn"].astype(np.int64) << 34
        dd = self.death[v["psn"]]
        after = (dd >= 0) & ((v["begin"] >= (dd + 1) * DAY) | (inpat & (v["end"] >= (dd + 1) * DAY)))
        keep &= ~(after & (v["tag"] < 0))  # look-alike visits too: only planted schemes use a dead card
        margin = 2 * DAY
        # background stays overlapping a protected (planted / look-alike) stay of the same person
        ps = np.flatnonzero(inpat & prot)
        ps = ps[np.argsort(psn64[ps] + v["begin"][ps], kind="stable")]
        kb = psn64[ps] + v["begin"][ps]
        cm = np.maximum.accumulate(psn64[ps] + v["end"][ps]) if len(ps) else ps
        bs = np.flatnonzero(inpat & ~prot & keep)
        if len(ps):
            j = np.searchsorted(kb, psn64[bs] + v["end"][bs] + margin, "left") - 1
            hit = (j >= 0) & (cm[np.maximum(j, 0)] > psn64[bs] + v["begin"][bs] - margin)
            keep[bs[hit]] = False
        # background stays overlapping an earlier stay of the same person
        s = np.flatnonzero(inpat & keep)
        s = s[np.argsort(psn64[s] + v["begin"][s], kind="stable")]
        ends = psn64[s] + v["end"][s]
        prev = np.r_[np.int64(-1), np.maximum.accumulate(ends)[:-1]] if len(s) else s
        hit = (prev > psn64[s] + v["begin"][s] - margin) & ~prot[s]
        keep[s[hit]] = False
        # background visits during a stay
        s = np.flatnonzero(inpat & keep)
        s = s[np.argsort(psn64[s] + v["begin"][s], kind="stable")]
        kb = psn64[s] + v["begin"][s]
        cm = np.maximum.accumulate(psn64[s] + v["end"][s])
        o = np.flatnonzero(~inpat & ~prot & keep)
        kv = psn64[o] + v["begin"][o]
        j = np.searchsorted(kb, kv, "right") - 1
        hit = (j >= 0) & (cm[np.maximum(j, 0)] >= kv)
        keep[o[hit]] = False
        # one person, two places within 3 hours: chance coincidences of independent draws, not travel; drop
        a = np.flatnonzero(keep)
        a = a[np.argsort(psn64[a] + v["begin"][a], kind="stable")]
        close = ((v["psn"][a][1:] == v["psn"][a][:-1]) & (v["begin"][a][1:] - v["begin"][a][:-1] < 3 * 3600)
                 & (v["inst"][a][1:] != v["inst"][a][:-1]))
        later = close & ~prot[a][1:] & ~inpat[a][1:]
        earlier = close & ~later & ~prot[a][:-1] & ~inpat[a][:-1]
        keep[a[1:][later]] = False
        keep[a[:-1][earlier]] = False
        return keep

    def finalize(self) -> tuple[dict, dict]:
        v, ln = self.B.arrays()
        self.B = Builder()  # drop the per-batch lists: the concatenated arrays are all that is needed now
        keep = self.cleanup(v)
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(v["begin"][idx], kind="stable")]
        newpos = np.full(len(keep), -1, np.int64)
        newpos[order] = np.arange(len(order))
        V = {k: a[order] for k, a in v.items()}
        del v
        lk = newpos[ln["v"]] >= 0
        L = {k: a[lk] for k, a in ln.items()}
        del ln
        L["v"] = newpos[L["v"]]
        o = np.lexsort((L["t"], L["v"]))
        L = {k: a[o] for k, a in L.items()}
        first = np.searchsorted(L["v"], np.arange(len(order)))
        L["sn"] = np.arange(len(L["v"])) - first[L["v"]] + 1
        L["amt"] = np.round(L["cnt"] * L["pric"], 2)
        return V, L


# ---------------------------------------------------------------------------- writing
def _ts(sec: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(np.asarray(sec, np.int64) + T0_EPOCH, type=pa.timestamp("s")),
                       format="%Y-%m-%d %H:%M:%S")


def _ids(prefix: str, num: np.ndarray, width: int = 12) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(np.asarray(num, np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, s, "")


def _take(values, idx: np.ndarray) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    idx = np.asarray(idx)
    return pc.take(arr, pa.array(idx, mask=idx < 0))


def _money(x: np.ndarray) -> pa.Array:
    return pa.array(np.round(np.asarray(x, float), 2)).cast(pa.decimal128(16, 2), safe=False)


def _write(path: Path, build, n: int, chunk: int = 500_000) -> None:
    """Write n rows produced by build(lo, hi) -> dict of columns, in chunks."""
    writer = None
    for lo in range(0, max(n, 1), chunk):
        hi = min(n, lo + chunk)
        tb = pa.table(build(lo, hi))
        if writer is None:
            writer = pcsv.CSVWriter(str(path), tb.schema)
        writer.write_table(tb)
    writer.close()


def _append(path: Path, cols: dict) -> None:
    """Append rows (no header) to a CSV written by _write."""
    buf = pa.BufferOutputStream()
    pcsv.write_csv(pa.table(cols), buf, pcsv.WriteOptions(include_header=False))
    with open(path, "ab") as fh:
        fh.write(buf.getvalue().to_pybytes())


def write_city(city: City, V: dict, L: dict, out: Path) -> dict:
    rng = city.rng
    out.mkdir(parents=True, exist_ok=True)
    N = city.N
    # persons
    area = np.array([int(c) for c in city.d_code])[city.dist].astype(np.int64)
    bd = city.brdy.astype(str)
    ymd = np.char.replace(bd, "-", "").astype(np.int64)
    seq = 2 * rng.integers(1, 499, N) + (city.sex == 1)
    for _ in range(20):
        n17 = area * 10**11 + ymd * 1000 + seq
        _, first, cnt = np.unique(n17, return_index=True, return_counts=True)
        dup = np.ones(N, bool)
        dup[first] = False
        if not dup.any():
            break
        seq[dup] = 2 * rng.integers(1, 499, dup.sum()) + (city.sex[dup] == 1)
    digits = (n17[:, None] // 10 ** np.arange(16, -1, -1)) % 10
    chk = id_check_digit(digits)
    cert = pc.binary_join_element_wise(pc.cast(pa.array(n17), pa.string()), pa.array(chk), "")
    mob = pc.cast(pa.array(city.mob, mask=city.nomob), pa.string())
    death = np.where(city.death >= 0, (T0.astype("datetime64[D]") + np.maximum(city.death, 0)).astype(str), "")
    pcols = {
        "psn_no": pa.array(city.psn_code, pa.string()), "psn_name": pa.array(city.name, pa.string()),
        "gend": pa.array(city.sex.astype(str)), "brdy": pa.array(bd), "certno": cert,
        "insutype": pa.array(city.insutype.astype(str)),
        "insuplc_admdvs": _take(city.c_insu, city.insu_city), "mob": mob,
        "live_addr": pa.array(city.addr, pa.string()), "live_admdvs": _take(city.d_code, city.dist),
        "emp_name": pa.array(city.emp, pa.string()),
        "death_date": pa.array(death, mask=city.death < 0),
    }
    pcsv.write_csv(pa.table(pcols), str(out / "psn_info.csv"))
    # institutions, practitioners, catalogue
    pcsv.write_csv(pa.table({
        "fixmedins_code": pa.array(city.i_code, pa.string()), "fixmedins_name": pa.array(city.i_name, pa.string()),
        "fixmedins_type": pa.array(np.where(city.i_type == PHAR, "2", "1")),
        "hosp_lv": pa.array(city.i_lv, pa.string()), "medins_natu": pa.array(city.i_natu),
        "admdvs": _take(city.d_code, city.i_dist), "aprv_bed_cnt": pa.array(city.i_beds),
        "lnt": pa.array(np.round(city.i_lnt, 6)), "lat": pa.array(np.round(city.i_lat, 6)),
    }), str(out / "medins_info.csv"))
    pcsv.write_csv(pa.table({
        "prac_psn_code": pa.array(city.doc_code, pa.string()), "prac_psn_name": pa.array(city.doc_name, pa.string()),
        "prac_psn_type": pa.array(city.doc_type.astype(str)), "fixmedins_code": _take(city.i_code, city.doc_inst),
        "dept_code": _take([d[0] for d in C.DEPTS], city.doc_dept),
        "dept_name": _take([d[1] for d in C.DEPTS], city.doc_dept),
    }), str(out / "prac_info.csv"))
    maxd = IT_MAXD.astype(float)
    pcsv.write_csv(pa.table({
        "hilist_code": pa.array([it[1] for it in C.ITEMS]), "hilist_name": pa.array([it[2] for it in C.ITEMS]),
        "list_type": pa.array([it[3] for it in C.ITEMS]), "pric_uplmt_amt": _money(IT_LIMIT),
        "max_days_per_fill": pa.array(maxd, mask=maxd == 0).cast(pa.int32()),
        "key_drug_flag": pa.array([str(it[7]) for it in C.ITEMS]),
    }), str(out / "hilist.csv"))

    # visits, settlements, lines
    nv = len(V["psn"])
    tot = np.bincount(L["v"], weights=L["amt"], minlength=nv)
    med = V["med"]
    emp = city.insutype[V["psn"]] == 310
    inpat = INPAT[med]
    ratio = np.where(inpat, np.where(emp, 0.82, 0.68), np.where(med == M14, 0.7, np.where(emp, 0.5, 0.4)))
    base = np.where(inpat, np.maximum(tot - 300, 0), tot)
    hifp = np.round(base * ratio, 2)
    rest = np.round(tot - hifp, 2)
    acct = np.where(emp & ~inpat, rest, 0.0)
    cash = np.round(rest - acct, 2)
    stime = np.where(inpat, V["end"] + rng.integers(600, 5400, nv), V["begin"] + rng.integers(120, 1200, nv))
    insu = city.c_insu
    ppsn = pa.array(city.psn_code, pa.string())
    pinst = pa.array(city.i_code, pa.string())
    pdoc = pa.array(city.doc_code, pa.string())
    pop = pa.array(city.op_code, pa.string())
    dcodes = [d[0] for d in C.DEPTS]
    bg_opd = np.flatnonzero((V["tag"] == TAG_BG) & ~inpat)
    invalid = np.sort(rng.choice(bg_opd, max(1, len(bg_opd) // 1000), replace=False)) if len(bg_opd) else bg_opd
    refund = np.sort(rng.choice(bg_opd, max(1, len(bg_opd) // 300), replace=False)) if len(bg_opd) else bg_opd

    def mdtrt_cols(lo, hi, rows=None, ids=None, vali="1"):
        s = np.arange(lo, hi) if rows is None else rows
        ip = inpat[s]
        return {
            "mdtrt_id": _ids("JZ", s if ids is None else ids), "psn_no": pc.take(ppsn, pa.array(V["psn"][s])),
            "fixmedins_code": pc.take(pinst, pa.array(V["inst"][s])), "med_type": _take(MEDS, med[s]),
            "begntime": _ts(V["begin"][s]), "endtime": _ts(np.where(ip, V["end"][s], V["begin"][s])),
            "mdtrt_cert_type": _take(["00", "01", "02", "03"], V["cert"][s]),
            "atddr_no": _take(pdoc, V["doc"][s]), "dept_code": _take(dcodes, V["dept"][s]),
            "dise_codg": _take([d[0] for d in C.DIAGS], V["diag"][s]),
            "dise_name": _take([d[1] for d in C.DIAGS], V["diag"][s]),
            "insuplc_admdvs": _take(insu, city.insu_city[V["psn"][s]]),
            "opter_id": _take(pop, V["opter"][s]), "vali_flag": pa.array(np.full(len(s), vali)),
        }

    _write(out / "mdtrt.csv", mdtrt_cols, nv)
    # void registrations (vali_flag 0): copies of some visits under new ids, never settled
    _append(out / "mdtrt.csv", mdtrt_cols(0, 0, rows=invalid, ids=nv + np.arange(len(invalid)), vali="0"))

    def setl_cols(lo, hi):
        s = slice(lo, hi)
        vi = np.arange(lo, hi)
        return {
            "setl_id": _ids("JS", vi), "mdtrt_id": _ids("JZ", vi), "psn_no": pc.take(ppsn, pa.array(V["psn"][s])),
            "fixmedins_code": pc.take(pinst, pa.array(V["inst"][s])), "setl_time": _ts(stime[s]),
            "medfee_sumamt": _money(tot[s]), "hifp_pay": _money(hifp[s]), "fund_pay_sumamt": _money(hifp[s]),
            "acct_pay": _money(acct[s]), "psn_cash_pay": _money(cash[s]),
            "mdtrt_cert_type": _take(["00", "01", "02", "03"], V["cert"][s]),
            "refd_setl_flag": pa.array(np.full(hi - lo, "0")), "vali_flag": pa.array(np.full(hi - lo, "1")),
        }

    _write(out / "setl.csv", setl_cols, nv)
    # refunds and re-settlements of some visits (refund cancels the first settlement, a new one follows)
    r = refund
    nr = len(r)
    rcols = []
    for sign, flag, base_id, dt in ((-1, "1", nv, 1800), (1, "0", nv + nr, 2400)):
        rcols.append({
            "setl_id": _ids("JS", base_id + np.arange(nr)), "mdtrt_id": _ids("JZ", r),
            "psn_no": pc.take(ppsn, pa.array(V["psn"][r])), "fixmedins_code": pc.take(pinst, pa.array(V["inst"][r])),
            "setl_time": _ts(stime[r] + dt), "medfee_sumamt": _money(sign * tot[r]),
            "hifp_pay": _money(sign * hifp[r]), "fund_pay_sumamt": _money(sign * hifp[r]),
            "acct_pay": _money(sign * acct[r]), "psn_cash_pay": _money(sign * cash[r]),
            "mdtrt_cert_type": _take(["00", "01", "02", "03"], V["cert"][r]),
            "refd_setl_flag": pa.array(np.full(nr, flag)), "vali_flag": pa.array(np.full(nr, "1")),
        })
    for c in rcols:
        _append(out / "setl.csv", c)
    # the re-settlement is the one that counts for these visits
    nl = len(L["v"])
    setl_of = np.arange(nv)
    setl_of[r] = nv + nr + np.arange(nr)
    icode = pa.array([it[1] for it in C.ITEMS])
    iname = pa.array([it[2] for it in C.ITEMS])
    itype = pa.array([it[3] for it in C.ITEMS])

    def fee_cols(lo, hi):
        s = slice(lo, hi)
        vv = L["v"][s]
        prd = L["prd"][s]
        return {
            "feedetl_sn": _ids("", L["sn"][s], 4), "mdtrt_id": _ids("JZ", vv),
            "psn_no": pc.take(ppsn, pa.array(V["psn"][vv])), "setl_id": _ids("JS", setl_of[vv]),
            "fee_ocur_time": _ts(L["t"][s]), "hilist_code": pc.take(icode, pa.array(L["item"][s])),
            "hilist_name": pc.take(iname, pa.array(L["item"][s])), "list_type": pc.take(itype, pa.array(L["item"][s])),
            "cnt": pa.array(L["cnt"][s]), "pric": _money(L["pric"][s]), "det_item_fee_sumamt": _money(L["amt"][s]),
            "bilg_dr_codg": _take(pdoc, L["doc"][s]), "bilg_dept_codg": _take(dcodes, L["dept"][s]),
            "prd_days": pa.array(np.nan_to_num(prd), mask=np.isnan(prd)).cast(pa.int32()),
            "vali_flag": pa.array(np.full(hi - lo, "1")),
        }

    _write(out / "fee_list.csv", fee_cols, nl)
    nph = _phar_inv(city, V, L, out)
    return {"visits": int(nv), "void_visits": int(len(invalid)), "settlements": int(nv + 2 * nr),
            "fee_lines": int(nl), "phar_inv": int(nph)}


def _phar_inv(city: City, V: dict, L: dict, out: Path) -> int:
    """Pharmacy purchase (3), sale (4) and month-end stock (1) rows; skimmed sales never touched the shelf."""
    import pandas as pd

    rng = city.rng
    skim = [i for i, s in enumerate(city.schemes) if s["kind"] == "card_skimming"]
    vinst = V["inst"][L["v"]]
    m = (city.i_type[vinst] == PHAR) & IT_DRUG[L["item"]] & ~np.isin(V["tag"][L["v"]], skim)
    df = pd.DataFrame({"inst": vinst[m], "item": L["item"][m], "day": L["t"][m] // DAY, "cnt": L["cnt"][m]})
    sales = df.groupby(["inst", "item", "day"], as_index=False)["cnt"].sum()
    ms = city.month_starts()
    sales["month"] = np.searchsorted(ms, sales["day"].to_numpy(), "right") - 1
    mon = sales.groupby(["inst", "item", "month"], as_index=False)["cnt"].sum()
    buy = np.ceil(mon["cnt"].to_numpy() * rng.uniform(1.0, 1.2, len(mon)) / 10) * 10
    pday = ms[mon["month"].to_numpy()] + rng.integers(0, 4, len(mon))
    rows_inst = np.r_[mon["inst"].to_numpy(), sales["inst"].to_numpy(), mon["inst"].to_numpy()]
    rows_item = np.r_[mon["item"].to_numpy(), sales["item"].to_numpy(), mon["item"].to_numpy()]
    rows_type = np.r_[np.full(len(mon), "3"), np.full(len(sales), "4"), np.full(len(mon), "1")]
    mon["buy"] = buy
    mon["net"] = mon["buy"] - mon["cnt"]
    stock = 50 + mon.groupby(["inst", "item"])["net"].cumsum().to_numpy()
    send = ms[np.minimum(mon["month"].to_numpy() + 1, len(ms) - 1)] - 1
    rows_cnt = np.r_[buy, sales["cnt"].to_numpy(), stock]
    rows_t = np.r_[pday * DAY + 10 * 3600, sales["day"].to_numpy() * DAY + 21 * 3600, send * DAY + 23 * 3600]
    spl = np.r_[rng.integers(0, len(C.SUPPLIERS), len(mon)), np.full(len(sales) + len(mon), -1)]
    pcsv.write_csv(pa.table({
        "fixmedins_code": _take(city.i_code, rows_inst), "hilist_code": _take([it[1] for it in C.ITEMS], rows_item),
        "inv_data_type": pa.array(rows_type), "cnt": pa.array(rows_cnt.astype(float)), "occur_time": _ts(rows_t),
        "spler_name": _take(C.SUPPLIERS, spl),
    }), str(out / "phar_inv.csv"))
    return len(rows_t)


def generate(persons: int, seed: int, out: Path, months: int = 12) -> dict:
    """Generate the city into out (CSV tables + truth.json) and return a summary."""
    if persons < 1000:
        raise ValueError(f"persons={persons}: the independent city needs at least 1000 persons")
    if not 3 <= months <= 36:
        raise ValueError(f"months={months}: must be between 3 and 36 (schemes need a history and a recent period)")
    out = Path(out)
    city = City(persons, seed, months)
    city.k = max(3, int(round(3 + 1.8 * np.log2(max(persons, 5000) / 5000))))
    city.background()
    city.lookalikes_all()
    city.new_ward_growth()
    city.schemes_all()
    V, L = city.finalize()
    summ = write_city(city, V, L, out)
    ids = np.char.add("JZ", np.char.zfill(np.arange(len(V["tag"])).astype(str), 12))
    tag = V["tag"]
    o = np.argsort(tag, kind="stable")
    bounds = np.searchsorted(tag[o], np.arange(len(city.schemes) + 1))
    schemes = []
    for si, s in enumerate(city.schemes):
        ev = ids[o[bounds[si]:bounds[si + 1]]]
        schemes.append({"scheme_id": s["scheme_id"], "kind": s["kind"],
                        "persons": [city.psn_code[p] for p in s["p"]],
                        "practitioners": [city.doc_code[d] for d in s["d"]],
                        "institutions": [city.i_code[i] for i in s["i"]],
                        "evidence": sorted(ev.tolist()), "note": s["note"]})
    looks = [{"kind": lk["kind"], "persons": [city.psn_code[p] for p in lk["p"]],
              "institutions": [city.i_code[i] for i in lk["i"]], "lead_kinds": lk["lead_kinds"], "note": lk["note"]}
             for lk in city.lookalikes]
    truth = {"generator": "indep", "persons": persons, "seed": seed, "months": months,
             "schemes": schemes, "lookalikes": looks}
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    kinds: dict[str, int] = {}
    for s in schemes:
        kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
    summ.update(persons=persons, seed=seed, months=months, institutions=int(city.NI),
                practitioners=int(len(city.doc_code)), schemes=kinds, lookalikes=len(looks),
                visits_per_person_year=round(summ["visits"] / persons / (city.W / 365.0), 2),
                inpatient_per_person_year=round(int(INPAT[V["med"]].sum()) / persons / (city.W / 365.0), 3),
                lines_per_visit=round(summ["fee_lines"] / max(1, summ["visits"]), 2))
    return summ


def main(argv: list[str] | None = None) -> int:
    """Command line: generate the city and print its summary as one JSON line."""
    ap = argparse.ArgumentParser(prog="python -m bench.cities.indep", description=__doc__)
    ap.add_argument("--persons", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--months", type=int, default=12)
    a = ap.parse_args(argv)
    summ = generate(a.persons, a.seed, a.out, a.months)
    print(json.dumps(summ, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
