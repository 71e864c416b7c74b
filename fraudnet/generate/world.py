"""The city's static world: persons and households, institutions, practitioners and the catalogue, as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudnet.generate import names as N

__all__ = ["World", "build_world", "add_staff", "CATEGORIES", "MED_CODES", "distance_km"]

# Institution categories, in a fixed order (index = category code in World.inst_cat).
CATEGORIES = ("tertiary", "secondary", "private", "community", "clinic", "pharmacy")
TERTIARY, SECONDARY, PRIVATE, COMMUNITY, CLINIC, PHARMACY = range(6)
# med_type codes used by the generator (index = code in visit arrays).
MED_CODES = ("11", "13", "14", "21", "41")
M_OUT, M_ER, M_CHRONIC, M_IN, M_PHARM = range(5)


def distance_km(lnt1: np.ndarray, lat1: np.ndarray, lnt2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Approximate great-circle distance in km (equirectangular, fine within a city)."""
    x = (np.asarray(lnt2) - np.asarray(lnt1)) * 111.32 * np.cos(np.radians(31.2))
    y = (np.asarray(lat2) - np.asarray(lat1)) * 110.57
    return np.sqrt(x * x + y * y)


@dataclass
class World:
    """Persons, institutions, practitioners and catalogue of one generated city (index-based arrays)."""

    n_persons: int
    # persons
    psn_no: np.ndarray = field(repr=False, default=None)
    psn_name: np.ndarray = field(repr=False, default=None)
    gend: np.ndarray = field(repr=False, default=None)  # 1 male, 2 female
    age: np.ndarray = field(repr=False, default=None)  # years at start
    brdy_days: np.ndarray = field(repr=False, default=None)  # days since 1970-01-01
    death_day: np.ndarray = field(repr=False, default=None)  # day of death in the period (index), -1 alive
    certno: np.ndarray = field(repr=False, default=None)
    insutype: np.ndarray = field(repr=False, default=None)
    insuplc: np.ndarray = field(repr=False, default=None)
    mob: np.ndarray = field(repr=False, default=None)
    addr: np.ndarray = field(repr=False, default=None)
    district: np.ndarray = field(repr=False, default=None)  # district index
    household: np.ndarray = field(repr=False, default=None)
    emp_name: np.ndarray = field(repr=False, default=None)
    p_lnt: np.ndarray = field(repr=False, default=None)
    p_lat: np.ndarray = field(repr=False, default=None)
    # institutions
    inst_code: np.ndarray = field(repr=False, default=None)
    inst_name: np.ndarray = field(repr=False, default=None)
    inst_cat: np.ndarray = field(repr=False, default=None)
    inst_lv: np.ndarray = field(repr=False, default=None)
    inst_natu: np.ndarray = field(repr=False, default=None)
    inst_district: np.ndarray = field(repr=False, default=None)
    inst_beds: np.ndarray = field(repr=False, default=None)
    inst_size: np.ndarray = field(repr=False, default=None)
    inst_lnt: np.ndarray = field(repr=False, default=None)
    inst_lat: np.ndarray = field(repr=False, default=None)
    inst_depts: np.ndarray = field(repr=False, default=None)  # bool [inst, dept]
    inst_fallback_dept: np.ndarray = field(repr=False, default=None)
    # practitioners (filled after background volumes are known)
    prac_code: np.ndarray = field(repr=False, default=None)
    prac_name: np.ndarray = field(repr=False, default=None)
    prac_type: np.ndarray = field(repr=False, default=None)
    prac_inst: np.ndarray = field(repr=False, default=None)
    prac_dept: np.ndarray = field(repr=False, default=None)  # dept index, -1 pharmacist
    # cashiers (opter ids)
    opter_code: np.ndarray = field(repr=False, default=None)
    opter_inst: np.ndarray = field(repr=False, default=None)
    # catalogue
    item_code: np.ndarray = field(repr=False, default=None)
    item_key_index: dict[str, int] = field(repr=False, default_factory=dict)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Chinese names: a surname by frequency and one or two given characters."""
    sw = np.asarray(N.SURNAME_WEIGHTS)
    sur = np.asarray(list(N.SURNAMES))[rng.choice(len(N.SURNAMES), n, p=sw / sw.sum())]
    given = np.asarray(list(N.GIVEN_CHARS))
    g1 = given[rng.integers(0, len(given), n)]
    g2 = given[rng.integers(0, len(given), n)]
    two = rng.random(n) < 0.7
    return np.char.add(np.char.add(sur, g1), np.where(two, g2, ""))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal strings of non-negative integers."""
    return np.char.zfill(np.asarray(values, dtype=np.int64).astype(str), width)


def _unique_numbers(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct random integers in [low, high)."""
    return low + rng.choice(high - low, n, replace=False)


def _certno(rng: np.random.Generator, admdvs: np.ndarray, brdy_days: np.ndarray, gend: np.ndarray) -> np.ndarray:
    """18-character resident ID numbers with a valid ISO 7064 MOD 11-2 check character."""
    n = len(admdvs)
    births = np.datetime_as_string(brdy_days.astype("datetime64[D]"), unit="D")
    ymd = np.char.replace(births, "-", "")
    seq = rng.integers(0, 500, n) * 2 + np.where(gend == 1, 1, 0)  # odd = male
    body = np.char.add(np.char.add(admdvs, ymd), _digits(seq, 3))
    digits = np.frombuffer("".join(body.tolist()).encode("ascii"), dtype=np.uint8).reshape(n, 17) - 48
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.asarray(list("10X98765432"))[(digits * weights).sum(axis=1) % 11]
    return np.char.add(body, check)


def _persons(w: World, rng: np.random.Generator, start_days: int) -> None:
    n = w.n_persons
    # households: sizes 1..6; members 0 head, 1 spouse, 2+ child or elderly parent
    sizes = rng.choice([1, 2, 3, 4, 5, 6], size=n, p=[0.22, 0.30, 0.30, 0.11, 0.05, 0.02])
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    hh = np.repeat(np.arange(len(sizes)), sizes)[:n]
    first = np.r_[0, np.flatnonzero(np.diff(hh)) + 1]
    pos = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
    n_hh = int(hh.max()) + 1
    head_age = np.clip(rng.normal(48, 15, n_hh), 20, 92)
    head_gend = rng.integers(1, 3, n_hh)
    age = head_age[hh].copy()
    gend = head_gend[hh].copy()
    spouse = pos == 1
    age[spouse] = np.clip(age[spouse] + rng.normal(-1, 3, spouse.sum()), 19, 95)
    gend[spouse] = 3 - gend[spouse]
    other = pos >= 2
    is_child = rng.random(n) < np.clip((75 - head_age[hh]) / 40, 0.05, 0.9)
    child = other & is_child
    elder = other & ~is_child
    age[child] = np.clip(age[child] - rng.uniform(24, 38, child.sum()), 0, 60)
    age[elder] = np.clip(age[elder] + rng.uniform(24, 32, elder.sum()), 60, 100)
    gend[other] = rng.integers(1, 3, other.sum())
    w.age = age.astype(np.int16)
    w.gend = gend.astype(np.int8)
    w.household = hh.astype(np.int32)
    w.brdy_days = (start_days - np.floor(age * 365.25) - rng.integers(0, 365, n)).astype(np.int64)
    # home district and coordinates per household
    dw = np.array([d.weight for d in N.DISTRICTS])
    hh_d = rng.choice(len(N.DISTRICTS), n_hh, p=dw / dw.sum())
    d_lnt = np.array([d.lnt for d in N.DISTRICTS])
    d_lat = np.array([d.lat for d in N.DISTRICTS])
    hh_lnt = d_lnt[hh_d] + rng.normal(0, 0.02, n_hh)
    hh_lat = d_lat[hh_d] + rng.normal(0, 0.016, n_hh)
    w.district = hh_d[hh].astype(np.int16)
    w.p_lnt, w.p_lat = hh_lnt[hh], hh_lat[hh]
    dname = np.asarray([d.name for d in N.DISTRICTS])
    street = np.char.add(np.asarray(N.STREET_WORDS)[rng.integers(0, len(N.STREET_WORDS), n_hh)],
                         np.asarray(N.STREET_SUFFIX)[rng.integers(0, len(N.STREET_SUFFIX), n_hh)])
    lane = rng.integers(1, 1800, n_hh).astype(str)
    bld = rng.integers(1, 40, n_hh).astype(str)
    room = (rng.integers(1, 25, n_hh) * 100 + rng.integers(1, 6, n_hh)).astype(str)
    addr = np.char.add(np.char.add(np.char.add(N.CITY_NAME, dname[hh_d]), street), lane)
    addr = np.char.add(np.char.add(np.char.add(np.char.add(addr, "弄"), bld), "号"), room)
    w.addr = np.char.add(addr, "室")[hh]
    # phones: unique per person; children and old parents often give the head's phone
    prefixes = np.asarray(N.MOBILE_PREFIXES)[rng.integers(0, len(N.MOBILE_PREFIXES), n)]
    mob = np.char.add(prefixes, _digits(_unique_numbers(rng, n, 0, 10**8), 8))
    shares = ((w.age < 16) | (w.age >= 75)) & (pos >= 1) & (rng.random(n) < 0.75)
    head_index = first[hh]
    mob[shares] = mob[head_index[shares]]
    w.mob = mob
    w.psn_name = _names(rng, n)
    # surnames of children follow the head
    kid = child & (rng.random(n) < 0.9)
    w.psn_name[kid] = np.char.add(np.asarray([s[0] for s in w.psn_name[head_index[kid]]]),
                                  np.asarray([s[1:] for s in w.psn_name[kid]]))
    dcode = np.asarray([d.admdvs for d in N.DISTRICTS])
    birth_place = np.where(rng.random(n) < 0.7, dcode[w.district],
                           rng.choice(["320102", "330106", "340104", "410105", "510107", "370102", "420106"], n))
    w.certno = _certno(rng, birth_place, w.brdy_days, w.gend)
    employed = (w.age >= 18) & (w.age < 60) & (rng.random(n) < 0.72)
    retired = (w.age >= 60) & (rng.random(n) < 0.6)
    w.insutype = np.where(employed | retired, "310", "390")
    w.emp_name = np.where(employed, np.asarray(N.EMPLOYERS)[rng.integers(0, len(N.EMPLOYERS), n)], "")
    w.insuplc = np.where(rng.random(n) < 0.975, N.CITY_ADMDVS,
                         np.asarray(N.OTHER_CITY_ADMDVS)[rng.integers(0, len(N.OTHER_CITY_ADMDVS), n)])
    # 20-character opaque person numbers (bijective scramble of a random draw)
    w.psn_no = np.char.add("3101000", _digits(_unique_numbers(rng, n, 10**12, 10**13), 13))


def _institutions(w: World, rng: np.random.Generator) -> None:
    n = w.n_persons
    counts = [max(2, round(n / 40000)), max(2, round(n / 15000)), max(4, round(n / 4000)),
              max(2, round(n / 6000)), max(4, round(n / 1500)), max(5, round(n / 1750))]
    cat = np.repeat(np.arange(6), counts).astype(np.int8)
    m = len(cat)
    dw = np.array([d.weight for d in N.DISTRICTS])
    district = rng.choice(len(N.DISTRICTS), m, p=dw / dw.sum())
    # make sure community centres and pharmacies spread over districts
    for c in (COMMUNITY, PHARMACY, CLINIC):
        idx = np.flatnonzero(cat == c)
        k = min(len(idx), len(N.DISTRICTS))
        district[idx[:k]] = rng.permutation(len(N.DISTRICTS))[:k]
    size_lo = np.array([30, 8, 2, 4, 0.6, 1.0])
    size_hi = np.array([60, 15, 5, 8, 2.0, 3.0])
    size = rng.uniform(size_lo[cat], size_hi[cat])
    lv = np.empty(m, dtype=object)
    lv[cat == TERTIARY] = rng.choice(["01", "02", "02", "02", "03"], (cat == TERTIARY).sum())
    lv[cat == SECONDARY] = rng.choice(["05", "05", "06"], (cat == SECONDARY).sum())
    lv[cat == PRIVATE] = rng.choice(["06", "07", "11", "11"], (cat == PRIVATE).sum())
    lv[cat == COMMUNITY] = rng.choice(["08", "09"], (cat == COMMUNITY).sum())
    lv[cat == CLINIC] = rng.choice(["10", "11", "11"], (cat == CLINIC).sum())
    lv[cat == PHARMACY] = "11"
    beds_lo = np.array([900, 250, 40, 20, 0, 0])
    beds_hi = np.array([3000, 800, 300, 80, 1, 1])
    beds = rng.integers(beds_lo[cat], beds_hi[cat])
    natu = np.where((cat == PRIVATE) | ((cat == CLINIC) & (rng.random(m) < 0.7)) | (cat == PHARMACY), "2", "1")
    d_lnt = np.array([d.lnt for d in N.DISTRICTS])
    d_lat = np.array([d.lat for d in N.DISTRICTS])
    lnt = np.round(d_lnt[district] + rng.normal(0, 0.018, m), 6)
    lat = np.round(d_lat[district] + rng.normal(0, 0.014, m), 6)
    dcode = np.asarray([d.admdvs for d in N.DISTRICTS])
    dname = np.asarray([d.name for d in N.DISTRICTS])
    serial = _digits(_unique_numbers(rng, m, 10, 100000), 5)
    prefix = np.where(cat == PHARMACY, "P", "H")
    code = np.char.add(np.char.add(prefix, dcode[district]), serial)
    words = np.asarray(N.INST_NAME_WORDS)
    brands = np.asarray(N.PHARMACY_BRANDS)
    short = np.asarray([s[:-1] if len(s) > 2 else s for s in dname])
    def pick(options: tuple[str, ...] | np.ndarray) -> str:
        return str(options[rng.integers(0, len(options))])

    name = []
    for i in range(m):
        c = int(cat[i])
        d = str(short[district[i]])
        street = pick(N.STREET_WORDS)
        if c == TERTIARY:
            name.append(f"上海{pick(words)}医院")
        elif c == SECONDARY:
            name.append(f"上海市{d}区{pick(('中心', '人民', '中医', '第二人民'))}医院")
        elif c == PRIVATE:
            name.append(f"上海{pick(words)}{pick(('骨科', '中西医结合', '康复', '老年病'))}医院")
        elif c == COMMUNITY:
            name.append(f"{d}区{street}街道社区卫生服务中心")
        elif c == CLINIC:
            name.append(f"上海{d}{pick(words)}{pick(('综合', '中医', '口腔', '普通'))}门诊部")
        else:
            name.append(f"上海{pick(brands)}{street}店")
    # de-duplicate names with a branch number
    seen: dict[str, int] = {}
    for i, s in enumerate(name):
        k = seen.get(s, 0)
        seen[s] = k + 1
        if k:
            name[i] = f"{s[:-1]}{k + 1}{s[-1]}" if s.endswith("店") else f"{s}({k + 1}分院)"
    nd = len(N.DEPTS)
    depts = np.zeros((m, nd), dtype=bool)
    dept_index = {d.code: i for i, d in enumerate(N.DEPTS)}
    for i in range(m):
        c = int(cat[i])
        if c in (TERTIARY, SECONDARY):
            depts[i, :] = True
            depts[i, dept_index["A02"]] = c == SECONDARY
        elif c == PRIVATE:
            for code_ in ("A03", "A04", "A16", "A50"):
                depts[i, dept_index[code_]] = True
            depts[i, dept_index["A05"]] = rng.random() < 0.5
        elif c == COMMUNITY:
            for code_ in ("A02", "A03", "A50"):
                depts[i, dept_index[code_]] = True
        elif c == CLINIC:
            depts[i, dept_index["A02"]] = True
            depts[i, dept_index[["A12", "A50", "A03"][rng.integers(0, 3)]]] = rng.random() < 0.4
    fallback = np.full(m, dept_index["A03"], dtype=np.int16)
    fallback[(cat == COMMUNITY) | (cat == CLINIC)] = dept_index["A02"]
    fallback[cat == PHARMACY] = -1
    w.inst_code, w.inst_name, w.inst_cat, w.inst_lv = code, np.asarray(name), cat, lv.astype(str)
    w.inst_natu, w.inst_district, w.inst_beds, w.inst_size = natu, district.astype(np.int16), beds, size
    w.inst_lnt, w.inst_lat, w.inst_depts, w.inst_fallback_dept = lnt, lat, depts, fallback


def _catalogue(w: World, rng: np.random.Generator) -> None:
    codes = []
    for i, it in enumerate(N.CATALOGUE):
        if it.list_type == "101":
            codes.append(f"X{chr(65 + i % 26)}{rng.integers(10, 99)}{chr(65 + (i * 7) % 26)}{chr(65 + (i * 3) % 26)}"
                         f"{rng.integers(100, 999)}{chr(65 + (i * 5) % 26)}{rng.integers(10**11, 10**12)}")
        elif it.list_type == "201":
            codes.append(f"00{rng.integers(11, 34)}{rng.integers(10**10, 10**11)}")
        else:
            codes.append(f"C{rng.integers(10**8, 10**9)}{rng.integers(10**9, 10**10)}")
    w.item_code = np.asarray(codes)
    w.item_key_index = {it.key: i for i, it in enumerate(N.CATALOGUE)}


def build_world(rng: np.random.Generator, persons: int, start_days: int) -> World:
    """Persons, institutions and catalogue of a city of `persons` inhabitants (practitioners come later)."""
    w = World(n_persons=persons)
    _persons(w, rng, start_days)
    _institutions(w, rng)
    _catalogue(w, rng)
    return w


def add_staff(w: World, rng: np.random.Generator, visits_per_inst_dept: np.ndarray,
              visits_per_inst: np.ndarray) -> None:
    """Create physicians per (institution, department) in proportion to volume, pharmacists and cashiers."""
    m, nd = visits_per_inst_dept.shape
    n_doc = np.where(w.inst_depts, np.maximum(1, np.ceil(visits_per_inst_dept / 2500.0)), 0).astype(int)
    n_doc[w.inst_cat == PRIVATE] += w.inst_depts[w.inst_cat == PRIVATE] * 1
    n_pharm = np.where(w.inst_cat == PHARMACY, rng.integers(1, 4, m), 0)
    inst_of = np.repeat(np.repeat(np.arange(m), nd), n_doc.ravel())
    dept_of = np.repeat(np.tile(np.arange(nd), m), n_doc.ravel())
    p_inst = np.r_[inst_of, np.repeat(np.arange(m), n_pharm)].astype(np.int32)
    p_dept = np.r_[dept_of, np.full(n_pharm.sum(), -1)].astype(np.int16)
    k = len(p_inst)
    nums = _unique_numbers(rng, k, 10**11, 10**12)
    dcode = np.asarray([d.admdvs for d in N.DISTRICTS])
    is_doc = p_dept >= 0
    doc_code = np.char.add("D", np.char.add(dcode[w.inst_district[p_inst]], _digits(nums % 10**6, 6)))
    ph_code = np.char.add("Y", np.char.add(dcode[w.inst_district[p_inst]], _digits(nums % 10**6, 6)))
    code = np.where(is_doc, doc_code, ph_code)
    # codes must be unique: append a check on collisions (rare) by re-drawing the serial part
    _, first = np.unique(code, return_index=True)
    dup = np.setdiff1d(np.arange(k), first)
    for i in dup:
        while True:
            cand = f"{code[i][:7]}{rng.integers(0, 10**6):06d}"
            if cand not in set(code.tolist()):
                code[i] = cand
                break
    w.prac_code, w.prac_inst, w.prac_dept = code, p_inst, p_dept
    w.prac_type = np.where(is_doc, "1", "3")
    w.prac_name = _names(rng, k)
    # cashiers (经办人): per institution, more at busy ones
    n_cash = np.where(w.inst_cat == PHARMACY, rng.integers(2, 5, m),
                      np.clip(np.ceil(visits_per_inst / 15000.0), 1, 40)).astype(int)
    w.opter_inst = np.repeat(np.arange(m), n_cash).astype(np.int32)
    w.opter_code = _digits(_unique_numbers(rng, len(w.opter_inst), 10**7, 10**8), 8)
    w.opter_code = np.char.add("31", w.opter_code)
