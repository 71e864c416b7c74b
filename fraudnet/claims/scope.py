"""Least privilege by region and case: which persons, institutions, visits and leads a scoped token may see.

A token may carry a scope (`fraudnet tokens create --regions 310101,3101 --cases L1,L2`); without one it sees the
whole workspace. One function or method per question, so every endpoint asks the same rules:

- **Region** (医保区划 `admdvs`, a 2/4/6-digit prefix covers a province/city/district):
  Person — `insuplc_admdvs` or `live_admdvs` starts with an allowed prefix (the bureau that pays, or where they
  live); Institution/Pharmacy — its `admdvs`; Practitioner — their institution's `admdvs` (`prac_info`);
  Phone/Address — linked to an in-scope person; Drug — always (catalogue data, no personal data; its timeline
  is cut to visible visits); Visit — its institution **or** its person is in scope (a district's bureau pays for
  its insured persons' care elsewhere, 异地就医, and supervises every visit at its own institutions).
- **Case** (lead ids, e.g. the leads referred to a police liaison): those leads, and every person, practitioner
  and institution they name (they are the case), with those persons' phones and addresses.
- A **lead** is visible when its id is in the case list, or when **any** of its persons, practitioners or
  institutions is in the region scope: a cross-border ring shows to both districts, each seeing the other side's
  members only as opaque `Outside:<token>` placeholders (`outside_id`).
Region and case scopes add up (a token with both sees either).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudnet.errors import InvalidRequestError

__all__ = ["Scope", "ScopeIndex", "check_regions", "check_cases", "split_list", "outside_id", "is_outside",
           "scope_index", "OUTSIDE_TYPE", "OUTSIDE_LABEL"]

_REGION_RE = re.compile(r"^(\d{2}|\d{4}|\d{6})$")
_CASE_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_SCOPE_ITEMS = 1000
OUTSIDE_TYPE = "Outside"
OUTSIDE_LABEL = "outside your scope / 超出权限范围"
# Key of the placeholder tokens: random per server process, so a token cannot be computed from a guessed
# psn_no (a dictionary attack on the hash); stable while the server runs, so one outside entity keeps its token
# across answers (the same border node in the ego network and in the lead's member list).
_OUTSIDE_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class Scope:
    """What a token is limited to: admdvs prefixes and/or lead ids (both empty never occurs: that is None)."""

    regions: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()

    @classmethod
    def of(cls, regions: Iterable[str] = (), cases: Iterable[str] = ()) -> Scope | None:
        """The scope of a token's stored regions and cases; None (the whole workspace) when it has neither."""
        regions, cases = tuple(regions or ()), tuple(cases or ())
        return cls(regions, cases) if regions or cases else None

    def describe(self) -> str:
        parts = []
        if self.regions:
            parts.append("regions " + ",".join(self.regions))
        if self.cases:
            parts.append("cases " + ",".join(self.cases))
        return "; ".join(parts)


def split_list(text: str | None) -> list[str]:
    """A comma list as typed on the command line (`310101, 3101`) → its items."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def check_regions(values: Iterable[str]) -> tuple[str, ...]:
    """admdvs prefixes of 2, 4 or 6 digits, sorted and without repeats; InvalidRequestError naming a bad one."""
    out = sorted({str(v).strip() for v in values or () if str(v).strip()})
    for v in out:
        if not _REGION_RE.match(v):
            raise InvalidRequestError(f"region {v!r} is not an admdvs prefix of 2, 4 or 6 digits "
                                      "(province 31, city 3101, district 310101) / 医保区划应为2、4或6位数字",
                                      field="regions")
    if len(out) > MAX_SCOPE_ITEMS:
        raise InvalidRequestError(f"{len(out)} regions: at most {MAX_SCOPE_ITEMS}", field="regions")
    return tuple(out)


def check_cases(values: Iterable[str]) -> tuple[str, ...]:
    """Lead ids, sorted and without repeats; InvalidRequestError naming a malformed one."""
    out = sorted({str(v).strip() for v in values or () if str(v).strip()})
    for v in out:
        if not _CASE_RE.match(v):
            raise InvalidRequestError(f"case {v!r} is not a lead id (letters, digits, _ . : -, at most 64)",
                                      field="cases")
    if len(out) > MAX_SCOPE_ITEMS:
        raise InvalidRequestError(f"{len(out)} cases: at most {MAX_SCOPE_ITEMS}", field="cases")
    return tuple(out)


def outside_id(node_id: str) -> str:
    """The opaque, stable placeholder id `Outside:<token>` shown instead of an entity outside the scope (a
    pharmacy gets the token of its code as an institution: lead member lists do not tell the two apart)."""
    if node_id.startswith("Pharmacy:"):
        node_id = "Institution:" + node_id[len("Pharmacy:"):]
    digest = hmac.new(_OUTSIDE_KEY, node_id.encode(), "sha256").hexdigest()[:16]
    return f"{OUTSIDE_TYPE}:{digest}"


def is_outside(node_id: str) -> bool:
    return node_id.startswith(OUTSIDE_TYPE + ":")


def _prefix_sql(column: str, regions: Sequence[str]) -> tuple[str, list[str]]:
    """`(starts_with(col, ?) OR …)` over the region prefixes."""
    cond = " OR ".join(f'starts_with(coalesce("{column}", \'\'), ?)' for _ in regions)
    return f"({cond})", list(regions)


def _rows(con: Any, sql: str, params: list[Any]) -> list[tuple]:
    import duckdb

    try:
        return con.execute(sql, params).fetchall()
    except duckdb.CatalogException:  # an optional table (prac_info) or a workspace without leads yet
        return []


@dataclass
class ScopeIndex:
    """The entity keys and lead ids one scope sees, read once from the claims store (see the module rules)."""

    scope: Scope
    persons: set[str] = field(default_factory=set)
    institutions: set[str] = field(default_factory=set)  # Institution and Pharmacy keys (fixmedins_code)
    practitioners: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    leads: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, con: Any, scope: Scope) -> ScopeIndex:
        index = cls(scope)
        if scope.regions:
            index._add_regions(con, scope.regions)
        region_members = (set(index.persons), set(index.institutions), set(index.practitioners))
        if scope.cases:
            index._add_cases(con, scope.cases)
        index._add_leads(con, *region_members)
        return index

    def _add_regions(self, con: Any, regions: Sequence[str]) -> None:
        cond, params = _prefix_sql("admdvs", regions)
        self.institutions |= {r[0] for r in _rows(con, f"SELECT fixmedins_code FROM medins_info WHERE {cond}",
                                                  params)}
        c1, p1 = _prefix_sql("insuplc_admdvs", regions)
        c2, p2 = _prefix_sql("live_admdvs", regions)
        self._add_persons(_rows(con, f"SELECT psn_no, mob_hash, addr_key FROM psn_info WHERE {c1} OR {c2}",
                                p1 + p2))
        self.practitioners |= {r[0] for r in _rows(
            con, "SELECT prac_psn_code FROM prac_info WHERE fixmedins_code IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(self.institutions)])}

    def _add_persons(self, rows: list[tuple]) -> None:
        for psn_no, mob_hash, addr_key in rows:
            self.persons.add(str(psn_no))
            if mob_hash:
                self.phones.add(str(mob_hash))
            if addr_key:
                self.addresses.add(str(addr_key))

    def _add_cases(self, con: Any, cases: Sequence[str]) -> None:
        rows = _rows(con, "SELECT lead_id, persons, practitioners, institutions FROM leads "
                          "WHERE lead_id IN (SELECT unnest(?::VARCHAR[]))", [list(cases)])
        persons: set[str] = set()
        for lead_id, ps, prs, ins in rows:
            self.leads.add(str(lead_id))
            persons |= {str(p) for p in ps or []}
            self.practitioners |= {str(p) for p in prs or []}
            self.institutions |= {str(i) for i in ins or []}
        self.persons |= persons
        self._add_persons(_rows(con, "SELECT psn_no, mob_hash, addr_key FROM psn_info "
                                     "WHERE psn_no IN (SELECT unnest(?::VARCHAR[]))", [sorted(persons)]))

    def _add_leads(self, con: Any, persons: set[str], institutions: set[str], practitioners: set[str]) -> None:
        """Leads naming any region member (all leads, active or not: a retired lead keeps its visibility)."""
        if not (persons or institutions or practitioners):
            return
        for lead_id, ps, prs, ins in _rows(con, "SELECT lead_id, persons, practitioners, institutions FROM leads",
                                           []):
            if (any(str(p) in persons for p in ps or []) or any(str(i) in institutions for i in ins or [])
                    or any(str(p) in practitioners for p in prs or [])):
                self.leads.add(str(lead_id))

    # ------------------------------------------------------------------ one question each
    def sees_person(self, psn_no: str) -> bool:
        return str(psn_no) in self.persons

    def sees_institution(self, fixmedins_code: str) -> bool:
        return str(fixmedins_code) in self.institutions

    def sees_practitioner(self, prac_psn_code: str) -> bool:
        return str(prac_psn_code) in self.practitioners

    def sees_visit(self, psn_no: str | None, fixmedins_code: str | None) -> bool:
        """A visit is visible when its person or its institution is."""
        return (psn_no is not None and self.sees_person(psn_no)) or (
            fixmedins_code is not None and self.sees_institution(fixmedins_code))

    def sees_lead(self, lead_id: str) -> bool:
        return str(lead_id) in self.leads

    def sees_entity(self, node_type: str, key: str) -> bool:
        """Whether an entity node (not a Visit: see `sees_visit`) is in scope."""
        if node_type == "Person":
            return self.sees_person(key)
        if node_type in ("Institution", "Pharmacy"):
            return self.sees_institution(key)
        if node_type == "Practitioner":
            return self.sees_practitioner(key)
        if node_type == "Phone":
            return key in self.phones
        if node_type == "Address":
            return key in self.addresses
        if node_type == "Drug":
            return True
        if node_type == "Lead":
            return self.sees_lead(key)
        return False

    def sees_member(self, member_type: str, key: str) -> bool:
        """A lead member (`persons`, `practitioners`, `institutions` list item) is in scope."""
        return self.sees_entity({"persons": "Person", "practitioners": "Practitioner",
                                 "institutions": "Institution"}[member_type], key)


_CACHE: dict[tuple[Any, ...], ScopeIndex] = {}
_CACHE_LOCK = threading.Lock()


def scope_index(con: Any, scope: Scope, version: tuple[Any, ...]) -> ScopeIndex:
    """The `ScopeIndex` of `scope`, built once per `version` (the caller's data version: leads and graph)."""
    key = (scope, *version)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    index = ScopeIndex.build(con, scope)
    with _CACHE_LOCK:
        if len(_CACHE) >= 256:
            _CACHE.clear()
        _CACHE[key] = index
    return index
