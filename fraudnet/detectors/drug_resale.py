"""Drug resale chains (倒卖药品): key-drug doctor/pharmacy shoppers linked by shared phones or addresses to a leader."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import igraph as ig
import numpy as np
import pandas as pd

from fraudnet.detectors.base import DetectionContext, Lead
from fraudnet.detectors.coverage import coverage, covered_clause, covered_table
from fraudnet.errors import DetectorError
from fraudnet.graph.model import node_id
from fraudnet.graph.projection import cached_projection, person_link_graph_around

__all__ = ["DrugResaleDetector"]

log = logging.getLogger(__name__)


def _key_events_sql(lines_ok: str, supply_table: str, supply_by_month: bool) -> str:
    """Key-drug events of visits meeting SQL condition `lines_ok`; days of supply only where covered in table
    `supply_table` (by institution, or by institution and month)."""
    month = " AND s.month = date_trunc('month', v.begntime)::DATE" if supply_by_month else ""
    return f"""
    SELECT f.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, CAST(v.begntime AS DATE) AS d,
           coalesce(v.is_pharmacy, FALSE) AS is_pharmacy, f.hilist_code,
           coalesce(nullif(any_value(f.bilg_dr_codg), ''), any_value(v.atddr_no)) AS prescriber,
           sum(coalesce(f.cnt, 0)) AS cnt,
           max(CASE WHEN s.fixmedins_code IS NULL THEN 0 ELSE coalesce(f.prd_days, 0) END) AS supply_days,
           any_value(v.fund_pay_sumamt) AS fund_pay_sumamt
    FROM fee_list f
    JOIN hilist h ON h.hilist_code = f.hilist_code AND h.key_drug_flag = '1'
    JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
    LEFT JOIN {supply_table} s ON s.fixmedins_code = v.fixmedins_code{month}
    WHERE NOT coalesce(v.refunded, FALSE) AND coalesce(f.cnt, 1) > 0 AND {lines_ok}
    GROUP BY f.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, v.is_pharmacy, f.hilist_code
"""


class DrugResaleDetector:
    """Find persons collecting key drugs from many prescribers and pharmacies, and the chains linking them.

    Method: key-drug fee lines (hilist key_drug_flag = 1) of valid, not refunded visits; for every person and
    every 90-day window (`window_days`) starting at one of their key-drug visits, DuckDB counts distinct
    prescribers (bilg_dr_codg, else the visit's atddr_no), distinct dispensing institutions, and the days of
    supply of each drug (Σ prd_days over fills). A window with ≥ `min_prescribers` prescribers and
    ≥ `min_pharmacies` dispensing institutions screens the person in (a shopper); the key-drug visits inside
    their screened windows are the evidence. Shoppers are then joined through the person link graph (persons
    sharing a phone hash or an address key, keys shared by more than `max_share` persons ignored): shoppers
    sharing a key, and non-shopping connectors (a leader or collector) who share keys with at least two
    shoppers. Each connected chain is one lead; `features["links"]` holds the linking edges
    (`Person:…` → `Phone:…`/`Address:…`). Pharmacies of the chain whose recorded sales of the drug
    (phar_inv inv_data_type 4) exceed their purchases (type 3) are named and add evidence.

    Each shopper's strength is 1 + up to 2 for prescribers/pharmacies beyond the screen (0.5 each) + up to 2
    for supply beyond the window (log2 of supply ÷ window days); a chain's evidence is the sum over shoppers +
    `link_bonus` when two or more shoppers are linked + `oversell_bonus`; score = logistic((evidence −
    `score_midpoint`) / `score_scale`). A lone shopper needs extreme figures to reach orange; a chronic patient
    refilling monthly from one prescriber and pharmacy never screens in; a family sharing a phone adds no
    shopper.

    Data: needs fee lines (`requires`): institutions whose visits mostly have none are left out (their few
    lines would show a shopper's fills there only by chance). Days of supply and pharmacy stock records are
    `optional`: the prescriber/pharmacy screen does not need them, so it still runs where they are missing;
    prd_days counts toward a shopper's supply only at institutions that mostly report it (elsewhere that part of
    the strength is 0 and the explanation says the supply is not known), and the stock check uses the
    pharmacies that report purchases (see `fraudnet.detectors.coverage`).

    Parameters
    ----------
    window_days : int, default 90
        Length of the sliding window.
    min_prescribers : int, default 4
        Distinct prescribers within a window to screen a person in.
    min_pharmacies : int, default 3
        Distinct dispensing institutions (pharmacies, or hospital dispensaries) within a window.
    max_share : int, default 30
        Phones/addresses shared by more persons than this are not used as links.
    link_bonus : float, default 1.0
        Added when at least two shoppers are linked.
    oversell_bonus : float, default 1.0
        Added when a pharmacy of the chain sold more of the drug than it bought.
    score_midpoint : float, default 5.0
        Evidence at which the score is 0.5.
    score_scale : float, default 1.5
        Logistic scale.
    min_score : float, default 0.25
        Leads below this score are not returned.
    """

    kind = "drug_resale"
    requires = ("fee_lines",)
    optional = ("days_of_supply", "pharmacy_stock")

    def __init__(
        self,
        window_days: int = 90,
        min_prescribers: int = 4,
        min_pharmacies: int = 3,
        max_share: int = 30,
        link_bonus: float = 1.0,
        oversell_bonus: float = 1.0,
        score_midpoint: float = 5.0,
        score_scale: float = 1.5,
        min_score: float = 0.25,
    ) -> None:
        self.window_days = window_days
        self.min_prescribers = min_prescribers
        self.min_pharmacies = min_pharmacies
        self.max_share = max_share
        self.link_bonus = link_bonus
        self.oversell_bonus = oversell_bonus
        self.score_midpoint = score_midpoint
        self.score_scale = score_scale
        self.min_score = min_score

    def _validate(self) -> None:
        checks = [
            ("window_days", self.window_days, isinstance(self.window_days, int) and self.window_days >= 1),
            ("min_prescribers", self.min_prescribers, isinstance(self.min_prescribers, int)
             and self.min_prescribers >= 1),
            ("min_pharmacies", self.min_pharmacies, isinstance(self.min_pharmacies, int) and self.min_pharmacies >= 1),
            ("max_share", self.max_share, isinstance(self.max_share, int) and self.max_share >= 2),
            ("score_scale", self.score_scale, self.score_scale > 0),
            ("min_score", self.min_score, 0 <= self.min_score <= 1),
        ]
        for name, value, ok in checks:
            if not ok:
                raise DetectorError(f"DrugResaleDetector: parameter {name}={value!r} is out of range")

    # ------------------------------------------------------------------ SQL
    @staticmethod
    def _events_sql(context: Any) -> str:
        by_month = coverage(context, "days_of_supply").cells is not None
        return _key_events_sql(covered_clause(context, "fee_lines", "v.fixmedins_code", "v.begntime"),
                               covered_table(context, "days_of_supply"), by_month)

    def _key_events(self, context: Any) -> pd.DataFrame:
        """Key-drug dispensing events: one row per (visit, drug) with prescriber, institution and supply days."""
        sql = self._events_sql(context)
        return cached_projection(context, "drug_resale:key_events", lambda: context.sql(sql))

    def _screened_windows(self, context: Any) -> pd.DataFrame:
        """Windows (psn_no, d = window start) meeting the prescriber and pharmacy screen, with their figures."""
        return context.sql(
            f"""
            WITH e AS ({self._events_sql(context)}),
            starts AS (SELECT DISTINCT psn_no, d FROM e),
            w AS (
                SELECT s.psn_no, s.d, e.mdtrt_id, e.fixmedins_code, e.prescriber, e.hilist_code, e.supply_days
                FROM starts s JOIN e ON e.psn_no = s.psn_no AND e.d >= s.d AND e.d < s.d + CAST($w AS INTEGER)
            ),
            counts AS (
                SELECT psn_no, d, count(DISTINCT prescriber) AS prescribers,
                       count(DISTINCT fixmedins_code) AS pharmacies, count(DISTINCT mdtrt_id) AS fills
                FROM w GROUP BY ALL
                HAVING count(DISTINCT prescriber) >= $p AND count(DISTINCT fixmedins_code) >= $ph
            ),
            supply AS (
                SELECT psn_no, d, max(sup) AS max_supply FROM (
                    SELECT psn_no, d, hilist_code, sum(supply_days) AS sup FROM w GROUP BY ALL
                ) GROUP BY ALL
            )
            SELECT c.*, s.max_supply FROM counts c JOIN supply s USING (psn_no, d)
            ORDER BY c.psn_no, c.d
            """,
            {"w": int(self.window_days), "p": int(self.min_prescribers), "ph": int(self.min_pharmacies)},
        )

    def _oversold(self, context: Any, pharmacies: list[str], drugs: list[str]) -> pd.DataFrame:
        if not pharmacies or not drugs:
            return pd.DataFrame(columns=["fixmedins_code", "hilist_code", "purchased", "sold"])
        return context.sql(
            """
            SELECT fixmedins_code, hilist_code,
                   sum(CASE WHEN inv_data_type = '3' THEN cnt ELSE 0 END) AS purchased,
                   sum(CASE WHEN inv_data_type = '4' THEN cnt ELSE 0 END) AS sold
            FROM phar_inv
            WHERE fixmedins_code IN (SELECT unnest($ph)) AND hilist_code IN (SELECT unnest($dr))
            GROUP BY ALL
            HAVING sum(CASE WHEN inv_data_type = '4' THEN cnt ELSE 0 END)
                 > sum(CASE WHEN inv_data_type = '3' THEN cnt ELSE 0 END)
            ORDER BY fixmedins_code, hilist_code
            """,
            {"ph": pharmacies, "dr": drugs},
        )

    # ------------------------------------------------------------------ run
    def run(self, context: DetectionContext) -> list[Lead]:
        """Return one lead per chain of linked shoppers (a lone shopper is a chain of one)."""
        self._validate()
        events = self._key_events(context)
        if events.empty:
            self.shoppers_ = pd.DataFrame()
            return []
        windows = self._screened_windows(context)
        if windows.empty:
            self.shoppers_ = pd.DataFrame()
            return []
        events = events.copy()
        events["d"] = pd.to_datetime(events["d"])
        windows = windows.copy()
        windows["d"] = pd.to_datetime(windows["d"])
        span = pd.Timedelta(days=int(self.window_days))

        # Evidence: the person's key-drug events inside any screened window.
        ev = events.merge(windows[["psn_no", "d"]].rename(columns={"d": "w0"}), on="psn_no")
        ev = ev[(ev["d"] >= ev["w0"]) & (ev["d"] < ev["w0"] + span)].drop(columns="w0").drop_duplicates()
        best = windows.sort_values(["psn_no", "max_supply", "prescribers"], ascending=[True, False, False])
        best = best.drop_duplicates("psn_no").set_index("psn_no")
        best["supply_ratio"] = best["max_supply"].astype(float) / float(self.window_days)
        best["strength"] = (
            1.0
            + np.minimum(2.0, 0.5 * (best["prescribers"] - self.min_prescribers)
                         + 0.5 * (best["pharmacies"] - self.min_pharmacies))
            + np.clip(np.log2(np.maximum(best["supply_ratio"].to_numpy(dtype=float), 1e-9)), 0.0, 2.0)
        )
        self.shoppers_ = best
        shoppers = set(best.index)

        chains = self._chains(context, shoppers)
        by_person = dict(list(ev.groupby("psn_no", sort=False)))
        try:  # the stock check for every pharmacy and drug of the evidence at once
            stock = self._oversold(context, sorted(set(ev.loc[ev["is_pharmacy"].astype(bool), "fixmedins_code"])),
                                   sorted(set(ev["hilist_code"])))
        except Exception:  # noqa: BLE001 — no phar_inv table: the stock check is not available
            log.debug("phar_inv not available", exc_info=True)
            stock = pd.DataFrame(columns=["fixmedins_code", "hilist_code", "purchased", "sold"])
        leads = []
        for members, connectors, links in chains:
            evm = pd.concat([by_person[p] for p in members if p in by_person])
            lead = self._lead(members, connectors, links, best, evm, stock)
            if lead is not None and lead.score >= self.min_score:
                leads.append(lead)
        since = getattr(context, "since", None)
        if since is not None:
            leads = [ld for ld in leads if ld.period_end is None or ld.period_end >= since]
        leads.sort(key=lambda ld: -ld.score)
        return leads

    def _chains(self, context: Any, shoppers: set[str]) -> list[tuple[list[str], list[str], list[dict[str, str]]]]:
        """Chains of shoppers: (shoppers, connectors, linking edges) per connected group."""
        try:
            g = person_link_graph_around(context, sorted(shoppers), int(self.max_share))
        except Exception:  # noqa: BLE001 — no phone/address columns: every shopper stands alone
            log.debug("no person link graph; shoppers are not chained", exc_info=True)
            g = ig.Graph()
            g.vs["name"] = []
        names = set(g.vs["name"]) if g.vcount() else set()
        seeds = [node_id("Person", p) for p in sorted(shoppers) if node_id("Person", p) in names]
        chains: list[tuple[list[str], list[str], list[dict[str, str]]]] = []
        linked: set[str] = set()
        if seeds:
            seed_idx = [g.vs.find(name=s).index for s in seeds]
            # Persons within two hops (one shared key) of a shopper, and how many shoppers each one reaches.
            reach: dict[int, set[int]] = {}
            for s in seed_idx:
                for k in g.neighbors(s):
                    for p in g.neighbors(k):
                        reach.setdefault(p, set()).add(s)
            shopper_idx = set(seed_idx)
            keep_persons = {p for p, r in reach.items() if p in shopper_idx or len(r - {p}) >= 2}
            keep_persons |= {p for p in shopper_idx if len(reach.get(p, set()) - {p}) >= 1}
            keys = {k for p in keep_persons for k in g.neighbors(p)}
            keys = {k for k in keys if sum(1 for p in g.neighbors(k) if p in keep_persons) >= 2}
            sub_vertices = sorted(keep_persons | keys)
            sub = g.subgraph(sub_vertices)
            for comp in sub.connected_components():
                vs = [sub_vertices[i] for i in comp]
                shop_v = [v for v in vs if v in shopper_idx]
                if len(shop_v) < 2:
                    continue
                kept = set(shop_v) | self._connectors(g, [v for v in vs if v in keep_persons and v not in shopper_idx],
                                                      shopper_idx)
                kept_keys = [k for k in vs if k in keys and sum(1 for p in g.neighbors(k) if p in kept) >= 2]
                links = []
                for k in kept_keys:
                    for p in g.neighbors(k):
                        if p in kept:
                            etype = g.es[g.get_eid(p, k)]["type"]
                            links.append({"source": g.vs[p]["name"], "target": g.vs[k]["name"], "type": etype})
                links.sort(key=lambda x: (x["target"], x["source"]))
                members = sorted(g.vs[v]["name"].split(":", 1)[1] for v in shop_v)
                connectors = sorted(g.vs[v]["name"].split(":", 1)[1] for v in kept - set(shop_v))
                chains.append((members, connectors, links))
                linked.update(members)
        for p in sorted(shoppers - linked):
            chains.append(([p], [], []))
        return chains

    @staticmethod
    def _connectors(g: ig.Graph, candidates: list[int], shoppers: set[int]) -> set[int]:
        """Non-shopping persons kept in a chain: those bridging shoppers through two different phones/addresses;
        if none bridges, the ones reaching the most shoppers (the presumed leader — a family member sharing one
        key with shoppers is not needed to link them and is left out)."""
        reach_by_key: dict[int, dict[int, set[int]]] = {}
        for p in candidates:
            reach_by_key[p] = {}
            for k in g.neighbors(p):
                shop = {q for q in g.neighbors(k) if q in shoppers and q != p}
                if shop:
                    reach_by_key[p][k] = shop
        bridging = {p for p, r in reach_by_key.items()
                    if len(r) >= 2 and len(set().union(*r.values())) >= 2}
        if bridging:
            return bridging
        totals = {p: len(set().union(*r.values())) if r else 0 for p, r in reach_by_key.items()}
        best = max(totals.values(), default=0)
        return {p for p, t in totals.items() if t == best and t >= 2}

    def _lead(self, members: list[str], connectors: list[str], links: list[dict[str, str]],
              best: pd.DataFrame, evm: pd.DataFrame, stock: pd.DataFrame) -> Lead | None:
        if evm.empty:
            return None
        pharmacies = set(evm.loc[evm["is_pharmacy"].astype(bool), "fixmedins_code"])
        drugs = set(evm["hilist_code"])
        oversold = stock[stock["fixmedins_code"].isin(pharmacies) & stock["hilist_code"].isin(drugs)]
        over_ph = sorted(set(oversold["fixmedins_code"]))
        strength = best.loc[members, "strength"].astype(float)
        evidence_total = float(strength.sum())
        if len(members) >= 2:
            evidence_total += float(self.link_bonus)
        if over_ph:
            evidence_total += float(self.oversell_bonus)
        score = 1.0 / (1.0 + math.exp(-(evidence_total - self.score_midpoint) / self.score_scale))

        visits = evm.drop_duplicates("mdtrt_id")
        amount = float(visits["fund_pay_sumamt"].fillna(0).sum())
        prescribers = sorted({str(x) for x in evm["prescriber"].dropna() if str(x)})
        institutions = sorted(set(evm["fixmedins_code"]))
        top_drug = Counter(evm["hilist_code"]).most_common(1)[0][0]
        max_p = int(best.loc[members, "prescribers"].max())
        max_ph = int(best.loc[members, "pharmacies"].max())
        max_ratio = float(best.loc[members, "supply_ratio"].max())
        supply_en = (f", and up to {max_ratio:.1f}× the days of supply the period needs" if max_ratio > 0
                     else "; days of supply not reported")
        supply_zh = f"，取药天数最高达所需的{max_ratio:.1f}倍" if max_ratio > 0 else "；未报送取药天数"
        key_degree = Counter(link["source"] for link in links)
        leader = ""
        if connectors:
            leader = max(connectors, key=lambda p: (key_degree.get(node_id("Person", p), 0), p))
        elif links:
            leader = max(members, key=lambda p: (key_degree.get(node_id("Person", p), 0), p))
        n_keys = len({link["target"] for link in links})
        persons = sorted(set(members) | set(connectors))
        w = int(self.window_days)
        chain_en = (
            f"{len(members)} persons, linked through {n_keys} shared phone(s)/address(es)"
            + (f" to {leader}," if leader else ",")
            if len(members) > 1 else f"Person {members[0]}"
        )
        chain_zh = (
            f"{len(members)}名参保人通过{n_keys}个共用手机号/地址相互关联" + (f"（关联人{leader}）" if leader else "")
            if len(members) > 1 else f"参保人{members[0]}"
        )
        over_en = f"; pharmacies selling more than they bought: {', '.join(over_ph)}" if over_ph else ""
        over_zh = f"；药店{'、'.join(over_ph)}的该药销售量超过采购量" if over_ph else ""
        explanation_en = (
            f"{chain_en} obtained key drug {top_drug} in {len(visits)} fills from {len(prescribers)} prescribers "
            f"and {len(institutions)} institutions; within {w} days up to {max_p} prescribers and {max_ph} "
            f"dispensing institutions per person{supply_en}{over_en}."
        )
        explanation_zh = (
            f"{chain_zh}，共{len(visits)}次取得重点药品{top_drug}，涉及{len(prescribers)}名开方医师、"
            f"{len(institutions)}家机构；{w}天内单人最多{max_p}名医师、{max_ph}家取药机构"
            f"{supply_zh}{over_zh}。"
        )
        features = {
            "collectors": members,
            "connectors": connectors,
            "leader": leader or None,
            "links": links,
            "shared_keys": n_keys,
            "fills": int(len(visits)),
            "prescribers": len(prescribers),
            "institutions": len(institutions),
            "max_prescribers_in_window": max_p,
            "max_pharmacies_in_window": max_ph,
            "max_supply_ratio": round(max_ratio, 2),
            "top_drug": top_drug,
            "drugs": drugs,
            "overselling_pharmacies": over_ph,
            "oversold": oversold.assign(
                purchased=oversold["purchased"].astype(float), sold=oversold["sold"].astype(float)
            ).to_dict("records"),
            "member_strength": {p: round(float(s), 2) for p, s in strength.items()},
            "evidence_total": round(evidence_total, 2),
        }
        start, end = evm["begntime"].min(), evm["begntime"].max()
        return Lead(
            kind=self.kind,
            score=score,
            persons=persons,
            practitioners=prescribers,
            institutions=institutions,
            evidence=visits["mdtrt_id"].astype(str).tolist(),
            amount_at_risk=amount,
            period_start=pd.Timestamp(start).to_pydatetime(),
            period_end=pd.Timestamp(end).to_pydatetime(),
            explanation_zh=explanation_zh,
            explanation_en=explanation_en,
            features=features,
        )
