"""Planted fraud schemes, rule violations, legitimate look-alikes and background noise for the synthetic city."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from fraudnet.generate import names as N
from fraudnet.generate.visits import (
    DAY,
    HOURS_OUT,
    Background,
    Pools,
    VisitTable,
    choose_institutions,
)
from fraudnet.generate.world import (
    CLINIC,
    COMMUNITY,
    M_CHRONIC,
    M_IN,
    M_OUT,
    M_PHARM,
    PHARMACY,
    PRIVATE,
    SECONDARY,
    TERTIARY,
    World,
    distance_km,
)

__all__ = ["Scheme", "Lookalike", "PlantResult", "plant", "SCHEME_KINDS", "LOOKALIKE_KINDS"]

SCHEME_KINDS = (
    "collusion_ring", "card_skimming", "drug_resale", "rule:split_admission", "rule:bed_hanging",
    "rule:impersonation", "rule:over_standard_price", "rule:over_quantity", "rule:duplicate_charge",
    "rule:discharge_growth", "rule:gender_age_mismatch",
)
LOOKALIKE_KINDS = ("family", "chronic_refill", "busy_hospital", "busy_pharmacy", "outbreak", "deceased")

DUP_NOISE_RATE = 1e-4
READMISSION_NOISE_RATE = 0.005


@dataclass
class Scheme:
    """One planted scheme; members are world indices, evidence is the visits tagged with its index."""

    scheme_id: str
    kind: str
    persons: list[int] = field(default_factory=list)
    practitioners: list[int] = field(default_factory=list)
    institutions: list[int] = field(default_factory=list)
    description_en: str = ""
    description_zh: str = ""
    params: dict = field(default_factory=dict)


@dataclass
class Lookalike:
    """A legitimate pattern that resembles a scheme (must not be flagged red)."""

    kind: str
    persons: list[int] = field(default_factory=list)
    institutions: list[int] = field(default_factory=list)
    description_en: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class PlantResult:
    schemes: list[Scheme]
    lookalikes: list[Lookalike]
    short_supply: dict[tuple[int, int], float]
    extra_diagnoses: list = field(default_factory=list)


def _r(x: float) -> float:
    return float(round(float(x), 2))


class _Planter:
    """Shared helpers: pick persons, staff and times; append tagged visits."""

    def __init__(self, rng: np.random.Generator, w: World, vt: VisitTable, bg: Background, pools: Pools, days: int):
        self.rng, self.w, self.vt, self.bg, self.pools, self.days = rng, w, vt, bg, pools, days
        self.schemes: list[Scheme] = []
        self.lookalikes: list[Lookalike] = []
        self.short_supply: dict[tuple[int, int], float] = {}
        self.busy = np.zeros(w.n_persons, dtype=bool)
        self.busy[bg.chronic_persons] = True  # keep chronic patients out of schemes (they are look-alikes)
        self.by_district = [np.flatnonzero(w.district == d) for d in range(len(N.DISTRICTS))]
        self.nd = len(N.DEPTS)
        self.dept_index = {d.code: i for i, d in enumerate(N.DEPTS)}
        self.diag_index = {d.code: i for i, d in enumerate(N.DIAGNOSES)}
        self.diag_dept = np.array([self.dept_index[d.dept] for d in N.DIAGNOSES])
        self.docs_by_inst: dict[int, np.ndarray] = {}
        docs = np.flatnonzero(w.prac_dept >= 0)
        order = docs[np.argsort(w.prac_inst[docs], kind="stable")]
        bounds = np.searchsorted(w.prac_inst[order], np.arange(len(w.inst_code) + 1))
        for i in range(len(w.inst_code)):
            self.docs_by_inst[i] = order[bounds[i]:bounds[i + 1]]
        self.kind_counter: dict[str, int] = {}
        self.inst_use: dict[str, set[int]] = {}

    def visits_at(self, v: dict[str, np.ndarray], inst: int) -> np.ndarray:
        """Positions of the (compacted background) visits at an institution."""
        if getattr(self, "_inst_order", None) is None:
            self._inst_order = np.argsort(v["inst"], kind="stable")
            self._inst_bounds = np.searchsorted(v["inst"][self._inst_order], np.arange(len(self.w.inst_code) + 1))
        return self._inst_order[self._inst_bounds[inst]:self._inst_bounds[inst + 1]]

    # ---- choices ----
    def n_schemes(self) -> int:
        return max(2, int(round(self.w.n_persons / self.rng.uniform(2000, 4000))))

    def persons(self, count: int, district: int | None = None, age: tuple[int, int] = (18, 85),
                sex: int = 0, districts: list[int] | None = None, mark: bool = True) -> np.ndarray:
        """`count` distinct persons not yet used by a scheme, from a district (or list of districts)."""
        w = self.w
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        if districts is not None:
            pool = np.concatenate([self.by_district[d] for d in districts])
        elif district is not None:
            pool = self.by_district[district]
        else:
            pool = np.arange(w.n_persons)
        chosen: list[int] = []
        seen: set[int] = set()
        for _ in range(60):
            cand = pool[self.rng.integers(0, len(pool), max(4 * count, 32))]
            ok = (~self.busy[cand]) & (w.age[cand] >= age[0]) & (w.age[cand] <= age[1])
            if sex:
                ok &= w.gend[cand] == sex
            for c in cand[ok]:
                if int(c) not in seen:
                    seen.add(int(c))
                    chosen.append(int(c))
                    if len(chosen) == count:
                        break
            if len(chosen) == count:
                break
            if _ == 30 and (district is not None or districts is not None):
                pool = np.arange(w.n_persons)
        out = np.asarray(chosen, dtype=np.int64)
        if mark:
            self.busy[out] = True
        return out

    def institution(self, kind: str, cats: tuple[int, ...], beds: bool = False, avoid: tuple[str, ...] = ()) -> int:
        """An institution of the given categories, preferring ones not yet used for this kind (or `avoid` kinds)."""
        w = self.w
        ok = np.isin(w.inst_cat, cats)
        if beds:
            ok &= w.inst_beds > 0
        cand = np.flatnonzero(ok)
        used = self.inst_use.setdefault(kind, set())
        # prefer the institutions least used by this kind, then by the `avoid` kinds
        load = np.array([(c in used) * 1000 + sum(c in self.inst_use.get(k, set()) for k in avoid) for c in cand])
        # categories may be listed more than once to weight them: sample a category first
        c_pick = int(self.rng.choice(cats))
        in_cat = w.inst_cat[cand] == c_pick
        pool = cand[in_cat & (load == load[in_cat].min())] if in_cat.any() else cand[load == load.min()]
        if load[np.isin(cand, pool)].min() > load.min():
            pool = cand[load == load.min()]
        pick = int(self.rng.choice(pool))
        used.add(pick)
        return pick

    def doctors(self, inst: int, k: int, dept: int | None = None) -> np.ndarray:
        docs = self.docs_by_inst[inst]
        if dept is not None:
            same = docs[self.w.prac_dept[docs] == dept]
            if len(same):
                docs = same
        return self.rng.choice(docs, min(k, len(docs)), replace=False)

    def pharmacist(self, inst: int, n: int) -> np.ndarray:
        b = self.bg
        return b.pharm_members[b.pharm_start[inst] + self.rng.integers(0, max(b.pharm_len[inst], 1), n)]

    def cashiers(self, inst: int, n: int) -> np.ndarray:
        b = self.bg
        return b.cash_members[b.cash_start[inst] + self.rng.integers(0, max(b.cash_len[inst], 1), n)]

    def dept_for(self, inst: int, diag: np.ndarray) -> np.ndarray:
        d = self.diag_dept[diag]
        ok = self.w.inst_depts[inst, d]
        return np.where(ok, d, self.w.inst_fallback_dept[inst])

    def doctor_for(self, inst: int, dept: np.ndarray) -> np.ndarray:
        b = self.bg
        key = inst * self.nd + dept
        length = b.group_len[key]
        return b.group_members[b.group_start[key] + np.floor(self.rng.random(len(dept)) * length).astype(np.int64)]

    def time_of_day(self, n: int, profile: np.ndarray) -> np.ndarray:
        hours = self.rng.choice(24, n, p=profile / profile.sum())
        return hours * 3600 + self.rng.integers(0, 3600, n)

    def new_scheme(self, kind: str, **kw: object) -> tuple[int, Scheme]:
        k = self.kind_counter.get(kind, 0) + 1
        self.kind_counter[kind] = k
        s = Scheme(scheme_id=f"{kind.replace('rule:', '')}-{k:03d}", kind=kind, **kw)
        self.schemes.append(s)
        return len(self.schemes) - 1, s

    # ---- visits ----
    def stays(self, psn: np.ndarray, inst: int, admit: np.ndarray, los: np.ndarray, diag: np.ndarray,
              prac: np.ndarray | None = None, tag: int = -1, **extra: object) -> np.ndarray:
        """Append inpatient stays (admission time in seconds from the period start)."""
        n = len(psn)
        dept = self.dept_for(inst, diag)
        if prac is None:
            prac = self.doctor_for(inst, dept)
        endt = (admit // DAY + los) * DAY + self.rng.integers(8 * 3600, 12 * 3600, n)
        cols = {"psn": psn, "inst": np.full(n, inst), "med": M_IN, "begn": admit, "endt": endt, "prac": prac,
                "dept": dept, "diag": diag, "cert": self.rng.choice(3, n, p=[0.5, 0.08, 0.42]),
                "opter": self.cashiers(inst, n), "tag": tag, "protect": tag >= 0, "los": los,
                "n_inday": extra.pop("n_inday", self.rng.integers(1, 4, n)), "pool": diag}
        cols.update(extra)
        return self.vt.add(n, **cols)

    def outpatient(self, psn: np.ndarray, inst: int, begn: np.ndarray, diag: np.ndarray,
                   prac: np.ndarray | None = None, tag: int = -1, med: int = M_OUT, **extra: object) -> np.ndarray:
        n = len(psn)
        dept = self.dept_for(inst, diag)
        if prac is None:
            prac = self.doctor_for(inst, dept)
        cols = {"psn": psn, "inst": np.full(n, inst), "med": med, "begn": begn,
                "endt": begn + self.rng.integers(300, 3600, n), "prac": prac, "dept": dept, "diag": diag,
                "cert": self.rng.choice(3, n, p=[0.5, 0.08, 0.42]), "opter": self.cashiers(inst, n), "tag": tag,
                "protect": tag >= 0, "pool": diag,
                "n_rand": np.minimum(self.rng.integers(1, 4, n), self.pools.drug_len[diag]),
                "n_exam": np.minimum(self.rng.integers(0, 2, n), self.pools.svc_len[diag])}
        cols.update(extra)
        return self.vt.add(n, **cols)

    def pharmacy(self, psn: np.ndarray, inst: int, begn: np.ndarray, tag: int = -1, **extra: object) -> np.ndarray:
        n = len(psn)
        cols = {"psn": psn, "inst": np.full(n, inst), "med": M_PHARM, "begn": begn, "endt": begn,
                "prac": self.pharmacist(inst, n), "dept": -1, "diag": -1,
                "cert": self.rng.choice(3, n, p=[0.5, 0.08, 0.42]), "opter": self.cashiers(inst, n), "tag": tag,
                "protect": tag >= 0, "pool": self.pools.otc_pool, "n_rand": self.rng.integers(1, 4, n)}
        cols.update(extra)
        return self.vt.add(n, **cols)


def _inpatient_diag(p: _Planter, psn: np.ndarray, choices: list[str]) -> np.ndarray:
    """A plausible inpatient diagnosis per person from `choices`, respecting sex/age limits."""
    out = np.empty(len(psn), dtype=np.int64)
    for i, person in enumerate(psn):
        ok = [p.diag_index[c] for c in choices
              if N.DIAGNOSES[p.diag_index[c]].sex in (0, int(p.w.gend[person]))
              and N.DIAGNOSES[p.diag_index[c]].age_min <= p.w.age[person] <= N.DIAGNOSES[p.diag_index[c]].age_max]
        out[i] = p.rng.choice(ok) if ok else p.diag_index["J18.900"]
    return out


COMMON_IN = ["J18.900", "I63.900", "I67.800", "K29.500", "M51.202", "I25.103", "K80.100", "J20.900", "I10.x00"]
RING_DIAG = ["M51.202", "I67.800", "K29.500", "M54.500", "I10.x00", "E11.900"]


# ------------------------------------------------------------------ schemes
def _collusion_rings(p: _Planter) -> None:
    rng, w = p.rng, p.w
    for _ in range(p.n_schemes()):
        inst = p.institution("collusion_ring", (PRIVATE, PRIVATE, PRIVATE, COMMUNITY, SECONDARY), beds=True,
                             avoid=("rule:split_admission", "rule:bed_hanging"))
        size = int(rng.integers(6, 21))
        near = [int(w.inst_district[inst])]
        members = p.persons(size, districts=near, age=(35, 82))
        size = len(members)
        n_docs = int(rng.integers(1, 4))
        diags = [p.diag_index[c] for c in rng.choice(RING_DIAG, int(rng.integers(1, 3)), replace=False)]
        dept = p.dept_for(inst, np.array(diags[:1]))[0]
        docs = p.doctors(inst, n_docs, dept)
        occasions = int(rng.integers(3, 11))
        span = p.days - 30
        slots = np.arange(5, span, 12 if span > 200 else 6)
        occasions = min(occasions, len(slots))
        occ_days = np.sort(rng.choice(slots, occasions, replace=False))
        base_los = int(rng.integers(5, 13))
        share = float(rng.uniform(0.7, 0.95))
        recruiter_phone_share = int(rng.integers(2, max(3, size // 2)))
        phone_members = rng.choice(members, min(recruiter_phone_share, size), replace=False)
        recruiter = str(w.mob[phone_members[0]])
        w.mob[phone_members] = recruiter
        tag, s = p.new_scheme("collusion_ring", persons=members.tolist(), practitioners=docs.tolist(),
                              institutions=[inst])
        n_visits = 0
        # who joins which occasion: every member at least twice (they are recruited to come back), >= 4 a time
        joins = rng.random((size, occasions)) < share
        for i in range(size):
            if joins[i].sum() < min(2, occasions):
                joins[i, rng.choice(occasions, min(2, occasions), replace=False)] = True
        for j in range(occasions):
            if joins[:, j].sum() < 4:
                joins[rng.choice(size, min(4, size), replace=False), j] = True
        for j, od in enumerate(occ_days):
            part = members[joins[:, j]]
            k = len(part)
            shift = rng.choice([-1, 0, 0, 0, 1], k)
            admit = (od + shift) * DAY + rng.integers(8 * 3600, 11 * 3600, k)
            los = np.clip(base_los + rng.integers(-1, 2, k), 3, 20)
            diag = np.array(diags)[rng.integers(0, len(diags), k)]
            p.stays(part, inst, admit, los, diag, prac=rng.choice(docs, k), tag=tag,
                    n_inday=np.full(k, int(rng.integers(2, 4))))
            n_visits += k
        s.description_en = (f"{size} recruited persons admitted together on {occasions} occasions at one institution "
                            f"by {len(docs)} practitioner(s), similar diagnoses and ~{base_los}-day stays; "
                            f"{len(phone_members)} members list the recruiter's phone.")
        s.description_zh = f"{size}名被招募人员在同一机构同进同出住院{occasions}次，诊断相近，住院约{base_los}天。"
        s.params = {"members": size, "occasions": occasions, "stay_days": base_los, "participation": _r(share),
                    "recruiter_phone": recruiter, "phone_members": len(phone_members), "stays": n_visits,
                    "diagnoses": [N.DIAGNOSES[d].code for d in diags]}


def _card_skimming(p: _Planter) -> None:
    rng, w = p.rng, p.w
    idx = w.item_key_index
    basket_pool = ["mecob", "calcium", "ginkgo", "omep", "lianhua", "atorv", "amlo", "cele", "ursod", "vitc"]
    d_lnt = np.array([d.lnt for d in N.DISTRICTS])
    d_lat = np.array([d.lat for d in N.DISTRICTS])
    for _ in range(p.n_schemes()):
        at_clinic = rng.random() < 0.15
        inst = p.institution("card_skimming", (CLINIC,) if at_clinic else (PHARMACY,))
        dist = distance_km(d_lnt, d_lat, w.inst_lnt[inst], w.inst_lat[inst])
        far = [int(d) for d in np.argsort(-dist)[: max(3, len(dist) // 2)] if dist[d] >= 10] or \
            [int(np.argmax(dist))]
        n_cards = int(rng.integers(15, 81))
        cards = p.persons(n_cards, districts=far, age=(20, 80))
        n_cards = len(cards)
        operator = int(p.cashiers(inst, 1)[0])
        picks = rng.choice(basket_pool, int(rng.integers(3, 5)), replace=False)
        basket = [idx[k] for k in picks[:-1]]
        substitute = idx[str(picks[-1])]  # the odd basket swaps its last item for this one
        counts = rng.integers(2, 6, len(basket))
        tag, s = p.new_scheme("card_skimming", persons=cards.tolist(), institutions=[inst])
        sites = [(inst, operator, cards)]
        if rng.random() < 0.4 and not at_clinic:
            inst2 = p.institution("card_skimming", (PHARMACY,))
            if inst2 != inst:
                sub = cards[rng.random(len(cards)) < rng.uniform(0.4, 0.8)]
                if len(sub) >= 8:
                    sites.append((inst2, int(p.cashiers(inst2, 1)[0]), sub))
                    s.institutions.append(inst2)
        total = 0
        bursts_total = 0
        for site_inst, op, site_cards in sites:
            n_bursts = int(rng.integers(2, 8))
            swipes = np.concatenate([site_cards, rng.choice(site_cards, int(len(site_cards) * rng.uniform(0, 1.2)))])
            rng.shuffle(swipes)
            chunks = np.array_split(swipes, n_bursts)
            burst_days = rng.choice(np.arange(p.days), n_bursts, replace=False)
            for bday, chunk in zip(burst_days, chunks, strict=True):
                if not len(chunk):
                    continue
                chunk = np.unique(chunk)
                rng.shuffle(chunk)
                off = rng.random() < 0.75
                start_h = rng.choice([21.5, 22.0, 22.5, 6.0, 6.5]) if off else rng.choice([12.5, 13.0])
                duration = rng.uniform(20, 120) * 60
                k = len(chunk)
                t = bday * DAY + int(start_h * 3600) + np.sort(rng.uniform(0, duration, k)).astype(np.int64)
                variant = rng.random(k) < 0.2
                fix = np.full((k, 3), -1)
                fix[:, : len(basket)] = basket
                fix[variant, len(basket) - 1] = substitute
                bc = np.full(k, int(counts[0]))
                cols = {"fix1": fix[:, 0], "fix2": fix[:, 1], "fix3": fix[:, 2],
                        "fix1_days": np.full(k, 7), "fix2_days": np.full(k, 7), "fix3_days": np.full(k, 7),
                        "basket_cnt": bc, "n_rand": 0, "opter": np.full(k, op), "cert": np.full(k, 2)}
                if w.inst_cat[site_inst] == PHARMACY:
                    p.pharmacy(chunk, site_inst, t, tag=tag, **cols)
                else:
                    diag = np.full(k, p.diag_index["M54.500"])
                    p.outpatient(chunk, site_inst, t, diag, tag=tag, n_exam=0, **cols)
                total += k
                bursts_total += 1
        s.practitioners = []
        s.description_en = (f"One operator swiped {n_cards} distinct social-security cards of far-away residents in "
                            f"{bursts_total} short bursts, mostly off hours, with near-identical baskets"
                            + (" and co-swiped the same cards at a second pharmacy." if len(sites) > 1 else "."))
        s.description_zh = (f"同一收款员在{bursts_total}个短时段内集中刷{n_cards}张外区参保人社保卡，"
                            "多在非营业高峰时段，购药组合几乎相同。")
        s.params = {"cards": n_cards, "bursts": bursts_total, "swipes": total,
                    "operators": [str(w.opter_code[op]) for _, op, _ in sites],
                    "basket": [str(w.item_code[b]) for b in basket], "second_site": len(sites) > 1}


def _drug_resale(p: _Planter) -> None:
    rng, w = p.rng, p.w
    idx = w.item_key_index
    key_drugs = {"glarg": "E11.900", "dapa": "E11.900", "sema": "E11.900", "ticag": "I25.103", "epo": "N18.900"}
    hospitals = np.flatnonzero(np.isin(w.inst_cat, (TERTIARY, SECONDARY, COMMUNITY)))
    pharmacies = np.flatnonzero(w.inst_cat == PHARMACY)
    for _ in range(p.n_schemes()):
        n_coll = int(rng.integers(3, 9))
        home = int(rng.integers(0, len(N.DISTRICTS)))
        group = p.persons(n_coll + 1, district=home, age=(25, 75))
        leader, collectors = int(group[0]), group[1:]
        links = []
        linked = [leader]
        for c in collectors:
            target = leader if rng.random() < 0.5 else int(rng.choice(linked))
            if rng.random() < 0.6:
                w.mob[c] = w.mob[target]
                links.append([str(w.psn_no[c]), str(w.psn_no[target]), "phone"])
            else:
                w.addr[c] = w.addr[target]
                w.district[c] = w.district[target]
                links.append([str(w.psn_no[c]), str(w.psn_no[target]), "address"])
            linked.append(int(c))
        drugs = list(rng.choice(list(key_drugs), int(rng.integers(1, 3)), replace=False))
        want_docs = int(rng.integers(4, 9))
        docs_list: list[int] = []
        for h in rng.permutation(hospitals):
            if len(docs_list) >= want_docs and len({int(w.prac_inst[d]) for d in docs_list}) >= 2:
                break
            docs_list.extend(int(d) for d in p.doctors(int(h), int(rng.integers(1, 4)), p.dept_index["A03"]))
        docs = np.asarray(docs_list[:want_docs])
        doc_inst = w.prac_inst[docs]
        n_ph = int(min(len(pharmacies), rng.integers(3, 6)))
        pharms = rng.choice(pharmacies, n_ph, replace=False)
        win = int(rng.integers(0, p.days - 90))
        tag, s = p.new_scheme("drug_resale", persons=[leader, *collectors.tolist()], practitioners=docs.tolist(),
                              institutions=sorted({*pharms.tolist(), *doc_inst.tolist()}))
        total = 0
        supply = 0
        for c in collectors:
            fills = int(rng.integers(8, 15))
            fill_days = np.sort(rng.choice(np.arange(win, win + 90), fills, replace=False))
            kinds = np.r_[np.zeros(fills // 2, int), np.ones(fills - fills // 2, int)]
            rng.shuffle(kinds)
            doc_seq = docs[(rng.integers(0, len(docs)) + np.arange(fills)) % len(docs)]
            ph_seq = pharms[(rng.integers(0, len(pharms)) + np.cumsum(kinds) - 1) % len(pharms)]
            for j in range(fills):
                drug = drugs[j % len(drugs)]
                diag = np.array([p.diag_index[key_drugs[drug]]])
                days = int(rng.integers(28, 31))
                t = np.array([fill_days[j] * DAY + int(rng.integers(8 * 3600, 17 * 3600))])
                extra = {"fix1": idx[drug], "fix1_days": days, "n_rand": 0, "n_exam": 0}
                if kinds[j] == 0:
                    d = int(doc_seq[j])
                    p.outpatient(np.array([c]), int(w.prac_inst[d]), t, diag, prac=np.array([d]), tag=tag,
                                 prescriber=d, **extra)
                else:
                    ph = int(ph_seq[j])
                    p.pharmacy(np.array([c]), ph, t, tag=tag, prescriber=int(doc_seq[j]), **extra)
                    for dk in drugs:
                        p.short_supply[(ph, idx[dk])] = float(rng.uniform(0.45, 0.8))
                total += 1
                supply += days
        s.description_en = (f"{n_coll} collectors linked to a leader by shared phones/addresses each obtained key "
                            f"drugs from {len(docs)} prescribers and {n_ph} pharmacies within 90 days "
                            f"({supply} days of supply); the pharmacies sold more than they bought.")
        s.description_zh = (f"{n_coll}名与组织者共用电话/地址的人员在90天内从{len(docs)}名医师、{n_ph}家药店"
                            f"获取重点药品，供药天数{supply}天。")
        s.params = {"collectors": n_coll, "leader": str(w.psn_no[leader]), "links": links,
                    "drugs": [str(w.item_code[idx[d]]) for d in drugs], "window_start_day": win,
                    "prescribers": len(docs), "pharmacies": [str(w.inst_code[x]) for x in pharms],
                    "fills": total, "days_of_supply": supply}


def _split_admission(p: _Planter) -> None:
    rng = p.rng
    for _ in range(p.n_schemes()):
        inst = p.institution("rule:split_admission", (SECONDARY, PRIVATE, PRIVATE, COMMUNITY), beds=True,
                             avoid=("collusion_ring", "rule:bed_hanging"))
        n_pat = int(rng.integers(6, 21))
        pats = p.persons(n_pat, district=int(p.w.inst_district[inst]), age=(45, 88))
        diag = _inpatient_diag(p, pats, COMMON_IN)
        docs = p.doctors(inst, int(rng.integers(1, 4)))
        tag, s = p.new_scheme("rule:split_admission", persons=pats.tolist(), practitioners=docs.tolist(),
                              institutions=[inst])
        stays = 0
        gaps = []
        for i, pat in enumerate(pats):
            chain = int(rng.integers(2, 5))
            day = int(rng.integers(0, max(1, p.days - 70)))
            for _c in range(chain):
                los = int(rng.integers(5, 13))
                if day + los >= p.days - 1:
                    break
                admit = np.array([day * DAY + int(rng.integers(8 * 3600, 11 * 3600))])
                p.stays(np.array([pat]), inst, admit, np.array([los]), np.array([diag[i]]),
                        prac=np.array([rng.choice(docs)]), tag=tag)
                stays += 1
                gap = int(rng.integers(1, 15))
                gaps.append(gap)
                day = day + los + gap
        s.description_en = (f"Institution discharged and readmitted {n_pat} patients within 15 days with the same "
                            f"diagnosis ({stays} stays).")
        s.description_zh = f"机构对{n_pat}名患者出院后15天内以相同诊断再次收治（共{stays}次住院），涉嫌分解住院。"
        s.params = {"patients": n_pat, "stays": stays, "max_gap_days": max(gaps) if gaps else 0}


def _bed_hanging(p: _Planter) -> None:
    rng = p.rng
    for _ in range(p.n_schemes()):
        inst = p.institution("rule:bed_hanging", (SECONDARY, PRIVATE, PRIVATE, COMMUNITY), beds=True,
                             avoid=("collusion_ring", "rule:split_admission"))
        n = int(rng.integers(5, 26))
        pats = p.persons(n, district=int(p.w.inst_district[inst]), age=(50, 88))
        n = len(pats)
        diag = _inpatient_diag(p, pats, ["I67.800", "M51.202", "K29.500", "I10.x00", "I25.103"])
        los = rng.integers(10, 21, n)
        admit = rng.integers(0, p.days - 25, n) * DAY + rng.integers(8 * 3600, 11 * 3600, n)
        hang_from = rng.integers(2, 4, n)
        hang_to = los - rng.integers(1, 3, n)
        tag, s = p.new_scheme("rule:bed_hanging", persons=pats.tolist(), institutions=[inst])
        pos = p.stays(pats, inst, admit, los, diag, tag=tag, hang_from=hang_from, hang_to=hang_to)
        docs = p.vt.batches[-1]["prac"]
        s.practitioners = sorted(set(docs.tolist()))
        absent = int((hang_to - hang_from).sum())
        s.description_en = (f"{n} inpatient stays with {absent} bed-days charged without any treatment "
                            "(patients effectively absent).")
        s.description_zh = f"{n}次住院共有{absent}个住院日仅收床位费、无任何诊疗记录，涉嫌挂床住院。"
        s.params = {"stays": int(len(pos)), "bed_days_without_treatment": absent}


def _impersonation(p: _Planter) -> None:
    rng, w = p.rng, p.w
    non_hosp = np.flatnonzero(np.isin(w.inst_cat, (CLINIC, COMMUNITY, PHARMACY, SECONDARY)))
    for _ in range(p.n_schemes()):
        person = int(p.persons(1, age=(20, 80))[0])
        home = choose_institutions(rng, p.bg.inst_choice_cum[M_OUT], np.array([w.district[person]]))[0]
        if w.inst_cat[home] == TERTIARY:
            home = int(rng.choice(non_hosp))
        dist = distance_km(w.inst_lnt[home], w.inst_lat[home], w.inst_lnt[non_hosp], w.inst_lat[non_hosp])
        far = non_hosp[dist >= 20]
        if not len(far):
            far = non_hosp[np.argsort(-dist)[:3]]
        k = int(rng.integers(3, 9))
        tag, s = p.new_scheme("rule:impersonation", persons=[person], institutions=[int(home)])
        days = np.sort(rng.choice(np.arange(p.days), k, replace=False))
        speeds = []
        for d in days:
            other = int(rng.choice(far))
            km = float(distance_km(w.inst_lnt[home], w.inst_lat[home], w.inst_lnt[other], w.inst_lat[other]))
            gap = max(120, int(km / rng.uniform(110, 400) * 3600))
            t1 = int(d * DAY + rng.integers(8 * 3600, 17 * 3600))
            first_home = rng.random() < 0.5
            ta, tb = (t1, t1 + gap) if first_home else (t1 + gap, t1)
            diag = np.array([p.diag_index[str(rng.choice(["J06.900", "K29.500", "M54.500"]))]])
            for inst_, tt in ((int(home), ta), (other, tb)):
                if w.inst_cat[inst_] == PHARMACY:
                    p.pharmacy(np.array([person]), inst_, np.array([tt]), tag=tag)
                else:
                    p.outpatient(np.array([person]), inst_, np.array([tt]), diag, tag=tag)
            if other not in s.institutions:
                s.institutions.append(other)
            speeds.append(km / (gap / 3600))
        s.description_en = (f"The same card was used {k} times at two places too far apart for the time between "
                            f"(median implied speed {np.median(speeds):.0f} km/h).")
        s.description_zh = (f"同一参保人凭证{k}次在相距甚远的两地短时间内先后就医/购药"
                            f"（隐含速度中位数{np.median(speeds):.0f}公里/小时），涉嫌冒名就医。")
        s.params = {"occurrences": k, "median_speed_kmh": _r(np.median(speeds))}


def _after_death(p: _Planter) -> None:
    """A dead person's card still used (冒名/死亡后就医): visits after the recorded death date."""
    rng, w = p.rng, p.w
    places = np.flatnonzero(np.isin(w.inst_cat, (CLINIC, COMMUNITY, PHARMACY, PRIVATE)))
    for _ in range(p.n_schemes()):
        found = p.persons(1, age=(55, 90))
        if not len(found) or not len(places) or p.days < 90:
            return
        person = int(found[0])
        death = int(rng.integers(20, p.days - 60))
        w.death_day[person] = death
        inst = int(rng.choice(places))
        k = int(rng.integers(2, 7))
        tag, s = p.new_scheme("rule:after_death", persons=[person], institutions=[inst])
        days = np.sort(rng.choice(np.arange(death + 3, p.days), k, replace=False))
        begn = days * DAY + p.time_of_day(k, HOURS_OUT)
        if w.inst_cat[inst] == PHARMACY:
            p.pharmacy(np.full(k, person), inst, begn, tag=tag)
        else:
            diag = np.full(k, p.diag_index[str(rng.choice(["I10.x00", "E11.900"]))])
            p.outpatient(np.full(k, person), inst, begn, diag, tag=tag, med=M_CHRONIC)
        s.description_en = f"The card of a person who died on day {death} was used {k} times afterwards."
        s.description_zh = f"参保人死亡（第{death}天）后其医保凭证仍被使用{k}次。"
        s.params = {"death_day": death, "visits_after": k}


def _overlapping_stays(p: _Planter) -> None:
    """One person in two inpatient stays at once, at two institutions (one of them fake: 虚假住院)."""
    rng = p.rng
    for _ in range(p.n_schemes()):
        person = p.persons(1, age=(30, 85))
        if not len(person) or p.days < 45:
            return
        a = p.institution("rule:overlapping_stays", (TERTIARY, SECONDARY), beds=True)
        b = p.institution("rule:overlapping_stays", (SECONDARY, PRIVATE), beds=True)
        if a == b:
            continue
        day = int(rng.integers(0, p.days - 30))
        los_a, los_b = int(rng.integers(7, 14)), int(rng.integers(3, 6))
        gap = int(rng.integers(2, max(3, los_a - los_b)))
        tag, s = p.new_scheme("rule:overlapping_stays", persons=[int(person[0])], institutions=[a, b])
        admit_a = np.array([day * DAY + int(rng.integers(8 * 3600, 16 * 3600))])
        admit_b = np.array([(day + gap) * DAY + int(rng.integers(8 * 3600, 16 * 3600))])
        diag = _inpatient_diag(p, person, COMMON_IN)
        p.stays(person, a, admit_a, np.array([los_a]), diag, tag=tag)
        p.stays(person, b, admit_b, np.array([los_b]), diag, tag=tag)
        s.description_en = (f"Admitted at two institutions at once: a {los_a}-night stay and, {gap} days into it, a "
                            f"{los_b}-night stay elsewhere.")
        s.description_zh = f"同一参保人同时在两家机构住院：住院{los_a}晚期间第{gap}天又在另一机构住院{los_b}晚。"
        s.params = {"los_a": los_a, "los_b": los_b, "gap_days": gap}


def _deaths(p: _Planter) -> None:
    """Persons who legitimately died during the period: their care ends at death (a look-alike for after_death)."""
    rng, w = p.rng, p.w
    old = np.flatnonzero((w.age >= 70) & (w.death_day < 0) & ~p.busy)
    if not len(old):
        return
    for person in rng.choice(old, min(len(old), max(5, w.n_persons // 200)), replace=False):
        w.death_day[person] = int(rng.integers(0, p.days))
        p.lookalikes.append(Lookalike("deceased", [int(person)], [], "Died during the period; care ends at death.",
                                      {"lead_kinds": ["rule:after_death", "rule:impersonation"]}))


def _flag_existing(p: _Planter, v: dict[str, np.ndarray], kind: str, cats: tuple[int, ...], flag: str,
                   lo: int, hi: int, med_ok: tuple[int, ...], need_drug: bool = False) -> None:
    """Mark background visits of one offending institution (in a window of months) with a violation flag."""
    rng = p.rng
    target, made = p.n_schemes(), 0
    for _attempt in range(5 * target + 10):
        if made >= target:
            break
        inst = p.institution(kind, cats)
        at = p.visits_at(v, inst)
        sel = np.isin(v["med"][at], med_ok) & (v["tag"][at] < 0) & ~v["protect"][at]
        if need_drug:
            sel &= (v["n_rand"][at] > 0) | (v["fix1"][at] >= 0) | (v["med"][at] == M_IN)
        months = int(rng.integers(3, 10))
        first = int(rng.integers(0, max(1, p.days // 30 - months + 1)))
        begn = v["begn"][at]
        win = (begn >= first * 30 * DAY) & (begn < (first + months) * 30 * DAY)
        cand = at[sel & win]
        if len(cand) < lo:
            cand = at[sel]
        want = int(rng.integers(lo, hi + 1))
        share = float(rng.uniform(0.2, 0.7))
        n = min(len(cand), max(lo, min(want, int(len(cand) * share) + lo)))
        if n < 3:  # an institution without enough visits: add visits of its own first
            continue
        pick = rng.choice(cand, n, replace=False)
        made += 1
        tag, s = p.new_scheme(kind, institutions=[inst])
        v["tag"][pick] = tag
        v["protect"][pick] = True
        v[flag][pick] = True
        s.persons = sorted(set(v["psn"][pick].tolist()))
        p.busy[s.persons] = True
        s.practitioners = sorted({int(x) for x in v["prac"][pick] if x >= 0})
        s.params = {"visits": int(n), "months": months, "first_month": first + 1}
        if kind == "rule:over_standard_price":
            s.description_en = (f"Institution charged above the catalogue price ceiling on {n} visits over "
                                f"{months} months.")
            s.description_zh = f"机构在{months}个月内{n}次就诊的收费单价高于医保最高限价，涉嫌超标准收费。"
        elif kind == "rule:over_quantity":
            s.description_en = (f"Institution dispensed far beyond the maximum days per fill on {n} visits over "
                                f"{months} months.")
            s.description_zh = f"机构在{months}个月内{n}次就诊开药天数远超单次最大取药天数，涉嫌超量开药。"
        else:
            s.description_en = f"Institution billed the same item twice at the same time on {n} visits."
            s.description_zh = f"机构在{n}次就诊中同一项目同一时间重复收费。"


def _discharge_growth(p: _Planter) -> None:
    rng = p.rng
    months = p.days // 30
    # discharges per institution and 30-day month so far (ordinary care and anything planted before)
    per_month = np.zeros((len(p.w.inst_code), months + 2))
    for b in p.vt.batches:
        sel = b["med"] == M_IN
        np.add.at(per_month, (b["inst"][sel], np.minimum(b["endt"][sel] // DAY // 30, months + 1)), 1)
    for _ in range(p.n_schemes()):
        inst = p.institution("rule:discharge_growth", (SECONDARY, PRIVATE, PRIVATE, COMMUNITY), beds=True,
                             avoid=("collusion_ring", "rule:split_admission", "rule:bed_hanging"))
        last = int(min(rng.integers(2, 5), max(1, months - 2)))
        history = per_month[inst, : max(1, months - last)]
        base = float(history.mean())
        # the jump is measured against the busiest earlier month so that it stands far above its own history
        level = max(base, float(history.max()))
        ratio = float(rng.uniform(1.0, 2.5))
        tag, s = p.new_scheme("rule:discharge_growth", institutions=[inst])
        added = []
        for j in range(last):
            m = months - last + j
            ramp = (j + 1) / last
            extra = int(round(level * ratio * (0.6 + 0.4 * ramp) + rng.integers(8, 21)))
            pats = p.persons(extra, district=int(p.w.inst_district[inst]), age=(40, 88))
            extra = len(pats)
            diag = _inpatient_diag(p, pats, COMMON_IN)
            los = rng.integers(5, 12, extra)
            end_day = m * 30 + rng.integers(0, 30, extra)
            end_day = np.minimum(end_day, p.days - 1)
            admit = np.maximum(end_day - los, 0) * DAY + rng.integers(8 * 3600, 11 * 3600, extra)
            p.stays(pats, inst, admit, los, diag, tag=tag)
            np.add.at(per_month[inst], np.minimum(end_day // 30, months + 1), 1)
            added.append(extra)
            s.persons.extend(pats.tolist())
        s.practitioners = []
        s.description_en = (f"Monthly discharges jumped in the last {last} months (+{sum(added)} stays over a baseline "
                            f"of {base:.1f} per month).")
        s.description_zh = (f"机构最近{last}个月出院人次激增（新增{sum(added)}人次，原月均{base:.1f}人次），"
                            "涉嫌诱导住院。")
        s.params = {"months": last, "baseline_per_month": _r(base), "added_per_month": added, "ratio": _r(ratio)}


def _gender_age_mismatch(p: _Planter) -> None:
    rng, w = p.rng, p.w
    for _ in range(p.n_schemes()):
        inst = p.institution("rule:gender_age_mismatch", (SECONDARY, PRIVATE, COMMUNITY, CLINIC))
        k = int(rng.integers(5, 21))
        tag, s = p.new_scheme("rule:gender_age_mismatch", institutions=[inst])
        n_m = int(rng.integers(0, k + 1))
        men = p.persons(n_m, district=int(w.inst_district[inst]), age=(20, 70), sex=1)
        women = p.persons(k - n_m, district=int(w.inst_district[inst]), age=(20, 80), sex=2)
        days = rng.integers(0, p.days, k)
        t = days * DAY + p.time_of_day(k, HOURS_OUT)
        if len(men):
            diag = np.full(len(men), p.diag_index[str(rng.choice(["O26.900", "O80.000"]))])
            p.outpatient(men, inst, t[: len(men)], diag, tag=tag)
        if len(women):
            use_item = rng.random(len(women)) < 0.5
            diag = np.where(use_item, p.diag_index["M54.500"], p.diag_index["N40.x00"])
            p.outpatient(women, inst, t[len(men):len(men) + len(women)], diag, tag=tag,
                         extra_item=np.where(use_item, w.item_key_index["psa"], -1))
        s.persons = [*men.tolist(), *women.tolist()]
        k = len(s.persons)
        s.description_en = (f"Institution billed {k} sex-incompatible diagnoses or items (pregnancy codes for men, "
                            "prostate diagnoses or tests for women).")
        s.description_zh = f"机构{k}次为男性开具妊娠/分娩诊断或为女性开具前列腺诊断/检查，性别不符。"
        s.params = {"visits": k, "men": int(len(men)), "women": int(len(women))}


# ------------------------------------------------------------------ look-alikes and noise
def _families(p: _Planter) -> None:
    rng, w = p.rng, p.w
    hh = w.household  # ascending: persons are stored household by household
    hh_start = np.searchsorted(hh, np.arange(int(hh.max()) + 2))
    # households in which at least two members give the same phone
    order = np.lexsort((w.mob, hh))
    same = (hh[order][1:] == hh[order][:-1]) & (w.mob[order][1:] == w.mob[order][:-1])
    hh_busy = np.zeros(int(hh.max()) + 1, dtype=bool)
    np.logical_or.at(hh_busy, hh, p.busy)
    cand_hh = np.unique(hh[order[:-1][same]])
    cand_hh = cand_hh[~hh_busy[cand_hh]]
    if not len(cand_hh):
        return
    n = min(len(cand_hh), max(5, w.n_persons // 400))
    for h in rng.choice(cand_hh, n, replace=False):
        hh_members = np.arange(hh_start[h], hh_start[h + 1])
        mobs, counts = np.unique(w.mob[hh_members], return_counts=True)
        members = hh_members[w.mob[hh_members] == mobs[counts.argmax()]]
        places: list[int] = []
        for _ in range(int(rng.integers(2, 5))):
            day = int(rng.integers(0, p.days))
            t = day * DAY + p.time_of_day(1, HOURS_OUT)[0] + np.sort(rng.integers(0, 1800, len(hh_members)))
            if rng.random() < 0.5:
                inst = int(choose_institutions(rng, p.bg.inst_choice_cum[M_OUT], np.array([w.district[members[0]]]))[0])
                diag = np.full(len(hh_members), p.diag_index["J06.900"])
                p.outpatient(hh_members, inst, t, diag)
            else:
                inst = int(choose_institutions(rng, p.bg.inst_choice_cum[M_PHARM],
                                               np.array([w.district[members[0]]]))[0])
                p.pharmacy(hh_members, inst, t)
            places.append(inst)
        p.lookalikes.append(Lookalike("family", hh_members.tolist(), sorted(set(places)),
                                      "Family sharing a phone and address, sometimes visiting together.",
                                      {"shared_phone": str(w.mob[members[0]]),
                                       "shared_address": str(w.addr[members[0]])}))
        p.busy[hh_members] = True


def _chronic_refills(p: _Planter) -> None:
    w, bg = p.w, p.bg
    keyd = p.pools.item_key[bg.chronic_drug] & bg.chronic_refills
    for i in np.flatnonzero(keyd):
        p.lookalikes.append(Lookalike(
            "chronic_refill", [int(bg.chronic_persons[i])], [int(bg.chronic_inst[i]), int(bg.chronic_pharm[i])],
            "Chronic patient refilling a key drug monthly from one prescriber and one pharmacy.",
            {"prescriber": str(w.prac_code[bg.chronic_prac[i]]) if bg.chronic_prac[i] >= 0 else "",
             "drug": str(w.item_code[bg.chronic_drug[i]])}))


def _busy(p: _Planter, v: dict[str, np.ndarray]) -> None:
    rng, w = p.rng, p.w
    # big hospitals admit many patients the same day: record the tertiary ones with their busiest day's patients
    for inst in np.flatnonzero(w.inst_cat == TERTIARY):
        sel = np.flatnonzero((v["inst"] == inst) & (v["med"] == M_IN))
        if not len(sel):
            continue
        day = v["begn"][sel] // DAY
        busiest = np.bincount(day).argmax()
        pats = v["psn"][sel[day == busiest]]
        p.lookalikes.append(Lookalike("busy_hospital", sorted(set(pats.tolist())), [int(inst)],
                                      "Large tertiary hospital with many same-day admissions of unrelated patients.",
                                      {"busiest_day_admissions": int(len(pats))}))
    # busy pharmacies: member days with many local customers at peak hours, varied baskets
    pharmacies = np.flatnonzero(w.inst_cat == PHARMACY)
    for _ in range(max(2, w.n_persons // 20000)):
        inst = int(rng.choice(pharmacies))
        people = []
        for day in rng.choice(np.arange(p.days), int(rng.integers(4, 11)), replace=False):
            k = int(rng.integers(30, 61))
            cust = p.persons(k, district=int(w.inst_district[inst]), age=(18, 90), mark=False)
            t = day * DAY + int(rng.uniform(9, 10) * 3600) + np.sort(rng.integers(0, 2 * 3600, len(cust)))
            p.pharmacy(cust, inst, t, n_rand=rng.integers(1, 5, len(cust)))
            people.extend(cust.tolist())
        p.lookalikes.append(Lookalike("busy_pharmacy", sorted(set(people)), [inst],
                                      "Busy pharmacy: many distinct local cards at peak hours on member days, "
                                      "varied baskets.", {}))


def _outbreaks(p: _Planter) -> None:
    rng, w = p.rng, p.w
    for _ in range(max(2, w.n_persons // 15000)):
        inst = p.institution("outbreak", (TERTIARY, SECONDARY, PRIVATE), beds=True,
                             avoid=("rule:discharge_growth", "collusion_ring"))
        k = int(rng.integers(8, 26))
        pats = p.persons(k, district=int(w.inst_district[inst]), age=(8, 70))
        k = len(pats)
        day = int(rng.integers(0, p.days - 10))
        admit = day * DAY + int(rng.integers(12 * 3600, 17 * 3600)) + np.sort(rng.integers(0, 3 * 3600, k))
        los = rng.integers(2, 5, k)
        p.stays(pats, inst, admit, los, np.full(k, p.diag_index["T62.900"]))
        p.lookalikes.append(Lookalike("outbreak", pats.tolist(), [inst],
                                      "One-off group admission (food poisoning), same day once.",
                                      {"day": day, "size": k}))


def _noise(p: _Planter, v: dict[str, np.ndarray]) -> None:
    """Ordinary irregularities at low rates: legitimate readmissions, the odd clerical duplicate line."""
    rng = p.rng
    stays = np.flatnonzero((v["med"] == M_IN) & (v["tag"] < 0))
    pick = stays[rng.random(len(stays)) < READMISSION_NOISE_RATE]
    for i in pick:
        day = int(v["endt"][i] // DAY + rng.integers(3, 15))
        los = int(rng.integers(3, 10))
        if day + los >= p.days - 1:
            continue
        admit = np.array([day * DAY + int(rng.integers(8 * 3600, 12 * 3600))])
        p.stays(np.array([v["psn"][i]]), int(v["inst"][i]), admit, np.array([los]), np.array([v["diag"][i]]))
    dup = np.flatnonzero((v["tag"] < 0) & (rng.random(len(v["tag"])) < DUP_NOISE_RATE))
    v["dup"][dup] = True


def plant(rng: np.random.Generator, w: World, vt: VisitTable, bg: Background, pools: Pools, days: int,
          start: date) -> PlantResult:
    """Plant every scheme kind, the look-alikes and the noise; returns what truth.json records."""
    p = _Planter(rng, w, vt, bg, pools, days)
    w.death_day = np.full(w.n_persons, -1, dtype=np.int64)
    # schemes that flag existing background visits work on the compacted background first
    v = vt.concat()
    vt.batches = [v]
    _flag_existing(p, v, "rule:over_standard_price", (CLINIC, PRIVATE, COMMUNITY, PHARMACY), "overprice", 20, 250,
                   (M_OUT, M_CHRONIC, M_PHARM, M_IN))
    _flag_existing(p, v, "rule:over_quantity", (CLINIC, COMMUNITY, PHARMACY, PRIVATE), "overqty", 15, 200,
                   (M_OUT, M_CHRONIC, M_PHARM), need_drug=True)
    _flag_existing(p, v, "rule:duplicate_charge", (CLINIC, PRIVATE, COMMUNITY, SECONDARY), "dup", 15, 150,
                   (M_OUT, M_CHRONIC, M_IN))
    _noise(p, v)
    _collusion_rings(p)
    _card_skimming(p)
    _drug_resale(p)
    _split_admission(p)
    _bed_hanging(p)
    _discharge_growth(p)
    _impersonation(p)
    _after_death(p)
    _overlapping_stays(p)
    _gender_age_mismatch(p)
    _busy(p, v)
    _families(p)
    _chronic_refills(p)
    _outbreaks(p)
    _deaths(p)
    return PlantResult(p.schemes, p.lookalikes, p.short_supply)
