"""Drug resale (倒卖药品): key-drug collectors, alone or with relatives, tested against the city's patients."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import igraph as ig
import numpy as np
import pandas as pd
from scipy.special import gammainc

from fraudnet.detectors.base import ORANGE_AT, DetectionContext, Lead
from fraudnet.detectors.coverage import coverage, covered_clause, covered_table
from fraudnet.errors import DetectorError
from fraudnet.graph.model import node_id
from fraudnet.graph.projection import (
    cached_projection,
    person_link_edges_query,
    person_link_graph_around,
    person_links,
)

__all__ = ["DrugResaleDetector"]

log = logging.getLogger(__name__)


def _key_events_sql(lines_ok: str, supply_table: str, supply_by_month: bool) -> str:
    """Key-drug events of visits meeting SQL condition `lines_ok`; days of supply only where covered in table
    `supply_table` (by institution, or by institution and month), a fill counting at most the drug's
    max_days_per_fill (days beyond it are the over_quantity rule's finding, not evidence of collecting)."""
    month = " AND s.month = date_trunc('month', v.begntime)::DATE" if supply_by_month else ""
    return f"""
    SELECT f.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, CAST(v.begntime AS DATE) AS d,
           coalesce(v.is_pharmacy, FALSE) AS is_pharmacy, f.hilist_code,
           coalesce(nullif(any_value(f.bilg_dr_codg), ''), any_value(v.atddr_no)) AS prescriber,
           sum(coalesce(f.cnt, 0)) AS cnt,
           max(CASE WHEN s.fixmedins_code IS NULL THEN 0
                    ELSE least(coalesce(f.prd_days, 0), coalesce(nullif(h.max_days_per_fill, 0), f.prd_days, 0))
               END) AS supply_days,
           any_value(v.fund_pay_sumamt) AS fund_pay_sumamt
    FROM fee_list f
    JOIN hilist h ON h.hilist_code = f.hilist_code AND h.key_drug_flag = '1'
    JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
    LEFT JOIN {supply_table} s ON s.fixmedins_code = v.fixmedins_code{month}
    WHERE NOT coalesce(v.refunded, FALSE) AND coalesce(f.cnt, 1) > 0 AND {lines_ok}
    GROUP BY f.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, v.is_pharmacy, f.hilist_code
"""


class _BestColumns:
    """Each member's most surprising windows as plain arrays, so a group's test sums them without building frames
    (the same additions, in the same order, as summing the concatenated rows)."""

    columns = ("o_shop", "e_shop", "o_sup", "e_sup")

    def __init__(self, best_by_person: dict[str, pd.DataFrame], persons: pd.DataFrame) -> None:
        self.values = {p: [df[c].to_numpy() for c in self.columns] for p, df in best_by_person.items()}
        self.own_p = persons["p"]

    def group_p(self, members: list[str], fisher: Callable[..., np.ndarray]) -> tuple[float, float]:
        """(p, p_group): the smaller of the group's combined test and its best member's p × members."""
        totals = [np.array([float(np.concatenate([self.values[m][i] for m in members]).sum())])
                  for i in range(len(self.columns))]
        p_group = float(fisher(*totals)[0])
        p_best = float(self.own_p.loc[members].min()) * len(members)
        return min(p_group, p_best), p_group


class DrugResaleDetector:
    """Find persons, and groups of relatives, collecting key drugs far beyond need from many prescribers and pharmacies.

    Method. Key-drug fills (hilist key_drug_flag = 1; one per valid, not refunded visit and drug) are read for
    every person. The city's own users of each drug give the baseline (robust to a few collectors among hundreds
    of patients):
      * `r_pr`, `r_ph`: the rate at which a repeat fill of the drug comes from a prescriber (counted at most once
        per dispensing institution, so doctors rotating in one hospital are not shopping), or from a dispensing
        institution, the patient has not used before (Σ new ÷ Σ repeat fills over the year, ½-smoothed);
      * `c`: the days of supply a regular patient (≥ 3 fills) holds per elapsed day, median, never below 1 (need
        is one day's supply a day); `g`: the median gap between a patient's consecutive fills.
    For each person and drug, every `window_days` window starting at one of their fills, and the whole period as
    a series (its prescribers and institutions over the period; supply and elapsed days summed over consecutive
    `window_days` tiles from the first fill, so the time between collecting bursts is not counted as need), is
    tested against that baseline for a patient with the same number of fills: shopping — observed new
    prescribers against Poisson(r_pr × repeat fills), or new dispensers against Poisson(r_ph × repeat fills),
    whichever is the more surprising (one new doctor usually means one new pharmacy: the two are not added);
    supply — the supply before the last fill, in fills of the window's mean size, against
    Poisson(max(1, c × elapsed days ÷ fill size)) (where prd_days is not reported: repeat fills against elapsed
    days ÷ `g`). A fill counts at most the drug's max_days_per_fill (days beyond it are the over_quantity rule's
    finding). The two tail probabilities are combined by Fisher's method and each drug's most surprising window
    or series kept; a person's figures are the sums over their drugs.

    Candidates are the persons whose own p-value is below `screen_alpha`, and the most surprising member of every
    household (a phone hash or address key shared by 2 to `max_share` persons) whose members' summed figures
    are below it. Candidates sharing a key are one group; the other tested persons on their keys (relatives)
    join, most surprising first, while each makes the group's combined test stronger (resale through
    relatives: each member moderate, the family together far beyond need); a person without key-drug fills who
    shares keys with two or more members is kept as a connector (the presumed leader). A group's p-value is the
    smaller of the combined test and the best member's p × members (Bonferroni within the group). A lead is
    raised when chance alone gives fewer than ~5 such persons or households in the city (p × tests, Bonferroni;
    `score_base` + `score_per_decade` × −log10(p × tests) ≥ `min_score`). Its tier is the false-discovery rate at
    its surprise (Benjamini–Hochberg over every person and household tested: p × tests ÷ rank): score =
    `score_base` + `score_per_decade` × −log10(FDR), so FDR 0.1 is orange (0.6) and 0.01 red (0.8) — the share
    of chance findings to expect among the leads at least this surprising, which is what the queue promises an
    investigator (Bonferroni answered a different question, "any false lead at all in the city", and left
    collectors 400 days beyond need yellow in a city of 200k). The material effect
    gates severity: a group whose supply beyond need is under `min_excess_fills` fills stays below orange;
    `features` report the excess fills, days and fund amount.
    `features["links"]` holds the linking edges (`Person:…` → `Phone:…`/`Address:…`); pharmacies of the lead whose
    recorded sales of the drug (phar_inv inv_data_type 4) exceed purchases (type 3) are named as context.

    A chronic patient refilling monthly at one or two pharmacies matches the baseline; a family sharing a phone
    adds persons whose refills match it; a nursing home's residents refilled in one burst each need what they
    get — none of them pass the family-wise test.

    Data: needs fee lines (`requires`): institutions whose visits mostly have none are left out (their few
    lines would show a shopper's fills there only by chance). Days of supply and pharmacy stock records are
    `optional`: prd_days counts only at institutions that mostly report it (elsewhere the supply test uses the
    fill count), and the stock check uses the pharmacies that report purchases (see
    `fraudnet.detectors.coverage`).

    Parameters
    ----------
    window_days : int, default 90
        Length of the sliding window and of the series' tiles.
    screen_alpha : float, default 0.01
        A person's (or household's) p-value below this makes a candidate whose relatives are tested with it.
    max_share : int, default 30
        Phones/addresses shared by more persons than this are not used as links.
    min_excess_fills : float, default 1.0
        Supply beyond need (in fills) a group needs to be orange or red.
    score_base : float, default 0.4
        Score at FDR 1 and at Bonferroni 1 (chance alone expected to give one such person or household in the city).
    score_per_decade : float, default 0.2
        Score added per factor 10 of the false-discovery rate (tier) or Bonferroni expectation (raising) below 1.
    min_score : float, default 0.25
        Leads below this score are not returned.
    """

    kind = "drug_resale"
    requires = ("fee_lines",)
    optional = ("days_of_supply", "pharmacy_stock")

    def __init__(
        self,
        window_days: int = 90,
        screen_alpha: float = 0.01,
        max_share: int = 30,
        min_excess_fills: float = 1.0,
        score_base: float = 0.4,
        score_per_decade: float = 0.2,
        min_score: float = 0.25,
    ) -> None:
        self.window_days = window_days
        self.screen_alpha = screen_alpha
        self.max_share = max_share
        self.min_excess_fills = min_excess_fills
        self.score_base = score_base
        self.score_per_decade = score_per_decade
        self.min_score = min_score

    def _validate(self) -> None:
        def num(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        checks = [
            ("window_days", self.window_days, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
            ("screen_alpha", self.screen_alpha, lambda v: num(v) and 0 < v <= 1),
            ("max_share", self.max_share, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2),
            ("min_excess_fills", self.min_excess_fills, lambda v: num(v) and v >= 0),
            ("score_base", self.score_base, lambda v: num(v) and 0 <= v <= 1),
            ("score_per_decade", self.score_per_decade, lambda v: num(v) and v > 0),
            ("min_score", self.min_score, lambda v: num(v) and 0 <= v <= 1),
        ]
        for name, value, ok in checks:
            if not ok(value):
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

    def _windows(self, context: Any) -> pd.DataFrame:
        """Every window (psn_no, hilist_code, w0 to w1 exclusive) starting at a fill and holding ≥ 2 fills of the
        drug: fills, prescribers (at most one per institution), institutions, supply before the last fill, elapsed
        days. Plus one `series` row per person-drug over their whole period: prescribers and institutions over the
        period, supply and elapsed days summed over consecutive `window_days` tiles from the first fill (a
        partition of the period, so no window is chosen; the time between bursts is not counted as need)."""
        return context.sql(
            f"""
            WITH e AS ({self._events_sql(context)}),
            starts AS (SELECT DISTINCT psn_no, hilist_code, d FROM e),
            w AS (
                SELECT s.psn_no, s.hilist_code, s.d AS w0, e.mdtrt_id, e.fixmedins_code, e.prescriber,
                       e.supply_days, e.begntime, e.d
                FROM starts s JOIN e ON e.psn_no = s.psn_no AND e.hilist_code = s.hilist_code
                                    AND e.d >= s.d AND e.d < s.d + CAST($w AS INTEGER)
            ),
            windows AS (
                SELECT psn_no, hilist_code, w0, w0 + CAST($w AS INTEGER) AS w1, FALSE AS series, count(*) AS n,
                       least(count(DISTINCT prescriber), count(DISTINCT fixmedins_code)) AS prescribers,
                       count(DISTINCT fixmedins_code) AS pharmacies,
                       sum(supply_days) - arg_max(supply_days, begntime) AS supply_before_last,
                       arg_max(supply_days, begntime) AS last_supply,
                       min(supply_days) > 0 AS supply_known,
                       date_diff('day', min(d), max(d)) AS elapsed
                FROM w GROUP BY psn_no, hilist_code, w0 HAVING count(*) >= 2
            ),
            t AS (
                SELECT e.*, min(d) OVER (PARTITION BY psn_no, hilist_code) AS first_d FROM e
            ),
            tiles AS (
                SELECT psn_no, hilist_code, floor(date_diff('day', first_d, d) / $w) AS tile, count(*) AS n,
                       sum(supply_days) - arg_max(supply_days, begntime) AS sbl,
                       min(supply_days) AS min_sup, date_diff('day', min(d), max(d)) AS elapsed
                FROM t GROUP BY ALL
            ),
            series AS (
                SELECT t.psn_no, t.hilist_code, min(t.d) AS w0, max(t.d) + 1 AS w1, TRUE AS series, count(*) AS n,
                       least(count(DISTINCT t.prescriber), count(DISTINCT t.fixmedins_code)) AS prescribers,
                       count(DISTINCT t.fixmedins_code) AS pharmacies,
                       any_value(x.sbl) AS supply_before_last,
                       sum(t.supply_days) - any_value(x.sbl) AS last_supply,
                       min(t.supply_days) > 0 AS supply_known,
                       any_value(x.elapsed) AS elapsed
                FROM t JOIN (SELECT psn_no, hilist_code, sum(sbl) AS sbl, sum(elapsed) AS elapsed FROM tiles
                             GROUP BY ALL) x USING (psn_no, hilist_code)
                GROUP BY t.psn_no, t.hilist_code HAVING count(*) >= 2
            )
            SELECT * FROM windows UNION ALL SELECT * FROM series
            """,
            {"w": int(self.window_days)},
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

    # ------------------------------------------------------------------ statistics
    @staticmethod
    def _baseline(events: pd.DataFrame) -> pd.DataFrame:
        """Per drug, from the city's users over the whole period: new-prescriber and new-dispenser rates per repeat
        fill, the median gap between a patient's fills and the median days of supply of a fill."""
        e = events.sort_values(["psn_no", "hilist_code", "d"])
        per = e.groupby(["psn_no", "hilist_code"], sort=False).agg(
            n=("mdtrt_id", "size"), k=("prescriber", "nunique"), m=("fixmedins_code", "nunique"))
        per["k"] = np.minimum(per["k"], per["m"])
        rep = per[per["n"] >= 2]
        agg = pd.DataFrame({"rep_fills": rep["n"] - 1, "new_pr": rep["k"] - 1, "new_ph": rep["m"] - 1}).astype(float)
        agg = agg.groupby(level="hilist_code").sum()
        base = pd.DataFrame(index=pd.Index(sorted(set(e["hilist_code"])), name="hilist_code"))
        base = base.join(agg).fillna(0.0)
        base["r_pr"] = (base["new_pr"] + 0.5) / (base["rep_fills"] + 1.0)
        base["r_ph"] = (base["new_ph"] + 0.5) / (base["rep_fills"] + 1.0)
        same = (e["psn_no"] == e["psn_no"].shift()) & (e["hilist_code"] == e["hilist_code"].shift())
        gaps = (e["d"] - e["d"].shift()).dt.days[same]
        base["gap"] = gaps.groupby(e.loc[same, "hilist_code"]).median()
        # Days of supply a regular patient of the drug (≥ 3 fills) holds per elapsed day: need is one day's supply
        # a day; a city whose patients habitually refill early raises it (never below 1).
        sup = e.assign(s=e["supply_days"].astype(float))
        per_s = sup.groupby(["psn_no", "hilist_code"], sort=False).agg(
            n=("s", "size"), tot=("s", "sum"), last=("s", "last"), known=("s", "min"), first_d=("d", "min"),
            last_d=("d", "max"))
        per_s["elapsed"] = (per_s["last_d"] - per_s["first_d"]).dt.days
        per_s = per_s[(per_s["known"] > 0) & (per_s["elapsed"] > 0) & (per_s["n"] >= 3)]
        ratio = (per_s["tot"] - per_s["last"]) / per_s["elapsed"]
        base["supply_rate"] = np.maximum(1.0, ratio.groupby(level="hilist_code").median())
        return base

    @staticmethod
    def _tail(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """P(X ≥ observed) for X ~ Poisson(expected), continuous in `observed` (regularised lower gamma)."""
        obs = np.asarray(observed, dtype=float)
        exp_ = np.maximum(np.asarray(expected, dtype=float), 1e-9)
        out = np.ones_like(obs)
        pos = obs > 0
        out[pos] = gammainc(obs[pos], exp_[pos])
        return np.clip(out, 1e-300, 1.0)

    @classmethod
    def _fisher(cls, o_shop: Any, e_shop: Any, o_sup: Any, e_sup: Any) -> np.ndarray:
        """Fisher's combination of the shopping and supply tails (χ² with 4 degrees of freedom)."""
        x = -2.0 * (np.log(cls._tail(o_shop, e_shop)) + np.log(cls._tail(o_sup, e_sup)))
        return np.clip(np.exp(-x / 2.0) * (1.0 + x / 2.0), 1e-300, 1.0)

    def _tested_windows(self, windows: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
        """Every window with its observed and expected counts and p-value, each person-drug's most surprising
        first."""
        w = windows.join(base[["r_pr", "r_ph", "gap", "supply_rate"]], on="hilist_code")
        rep = w["n"].astype(float) - 1.0
        # A fill from a new prescriber mostly comes from a new dispenser too (prescribers count at most once per
        # institution): the two are one event, so the test uses the larger of the two surprises, not their sum.
        o_pr, o_ph = (w["prescribers"] - 1).astype(float), (w["pharmacies"] - 1).astype(float)
        use_pr = self._tail(o_pr.to_numpy(), (w["r_pr"] * rep).to_numpy()) < self._tail(
            o_ph.to_numpy(), (w["r_ph"] * rep).to_numpy())
        w["o_shop"] = np.where(use_pr, o_pr, o_ph)
        w["e_shop"] = np.where(use_pr, w["r_pr"] * rep, w["r_ph"] * rep)
        # Supply before the last fill in fills of the window's own mean size, against what a patient of the drug
        # holds over the elapsed days (the city's supply per day; the fill count and median gap where unknown).
        known = w["supply_known"].astype(bool) & w["supply_rate"].notna()
        unit = (w["supply_before_last"].astype(float) + w["last_supply"].astype(float)) / w["n"].astype(float)
        unit = unit.where(known & (unit > 0), 1.0)
        gap = w["gap"].where(w["gap"] > 0).fillna(float(self.window_days))
        w["o_sup"] = np.where(known, w["supply_before_last"].astype(float) / unit, rep)
        w["e_sup"] = np.maximum(1.0, np.where(known, w["supply_rate"].fillna(1.0) * w["elapsed"].astype(float) / unit,
                                              w["elapsed"].astype(float) / gap))
        w["fill_days"] = np.where(known, unit, gap)
        w["supply_used"] = known
        w["p"] = self._fisher(w["o_shop"], w["e_shop"], w["o_sup"], w["e_sup"])
        return w.sort_values(["psn_no", "hilist_code", "p", "series", "w0"]).reset_index(drop=True)

    def _test_persons(self, windows: pd.DataFrame,
                      base: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """All tested windows, each person-drug's most surprising one, and per person the sums and p-value."""
        tested = self._tested_windows(windows, base)
        best = tested.drop_duplicates(["psn_no", "hilist_code"]).reset_index(drop=True)
        persons = best.groupby("psn_no")[["o_shop", "e_shop", "o_sup", "e_sup"]].sum()
        persons["p"] = self._fisher(persons["o_shop"], persons["e_shop"], persons["o_sup"], persons["e_sup"])
        return tested, best, persons

    # ------------------------------------------------------------------ run
    def run(self, context: DetectionContext) -> list[Lead]:
        """Return one lead per surprising person or group of linked persons."""
        self._validate()
        events = self._key_events(context)
        if events.empty:
            return []
        windows = self._windows(context)
        if windows.empty:
            return []
        events = events.copy()
        events["d"] = pd.to_datetime(events["d"])
        windows = windows.copy()
        windows["w0"] = pd.to_datetime(windows["w0"])
        windows["w1"] = pd.to_datetime(windows["w1"])
        # The baseline is the city's legitimate patients: measured once on everyone, then again without the
        # persons that first pass screens (for a rare drug, a few collectors would otherwise set its rates).
        screened: set[str] = set()
        for _ in range(2):
            base = self._baseline(events[~events["psn_no"].isin(screened)] if screened else events)
            tested, best, persons = self._test_persons(windows, base)
            screened = set(persons.index[persons["p"] < float(self.screen_alpha)])
        households = self._households(context, persons)
        n_tests = max(1, len(persons) + len(households))
        candidates = set(persons.index[persons["p"] < float(self.screen_alpha)])
        # A household (phone or address) whose members' combined figures pass the screen brings its most
        # surprising member in; the group then grows from there (relatives join only if they strengthen it).
        candidates |= set(households.loc[households["p"] < float(self.screen_alpha), "first"])
        if not candidates:
            return []
        groups = self._groups(context, candidates, persons)

        # Evidence: the fills in each person-drug's most surprising window and in every window as surprising as the
        # screen asks (a collector's fills beyond one window).
        shown = pd.concat([best, tested[tested["p"] < float(self.screen_alpha)]])
        in_groups = set().union(*[set(m) for m, _, _ in groups])
        shown = shown[shown["psn_no"].isin(in_groups)]
        ev = events.merge(shown[["psn_no", "hilist_code", "w0", "w1"]].drop_duplicates(),
                          on=["psn_no", "hilist_code"])
        ev = ev[(ev["d"] >= ev["w0"]) & (ev["d"] < ev["w1"])].drop(columns=["w0", "w1"])
        ev = ev.drop_duplicates(["mdtrt_id", "hilist_code"])
        by_person = dict(list(ev.groupby("psn_no", sort=False)))
        best_by_person = dict(list(best[best["psn_no"].isin(in_groups)].groupby("psn_no", sort=False)))
        try:  # the stock check for every pharmacy and drug of the evidence at once
            stock = self._oversold(context, sorted(set(ev.loc[ev["is_pharmacy"].astype(bool), "fixmedins_code"])),
                                   sorted(set(ev["hilist_code"])))
        except Exception:  # noqa: BLE001 — no phar_inv table: the stock check is not available
            log.debug("phar_inv not available", exc_info=True)
            stock = pd.DataFrame(columns=["fixmedins_code", "hilist_code", "purchased", "sold"])
        columns = _BestColumns(best_by_person, persons)
        group_ps = [columns.group_p(m, self._fisher) for m, _, _ in groups]
        fdr = self._false_discovery([p for p, _ in group_ps], n_tests)
        leads = []
        for (members, connectors, links), (p, p_group), group_fdr in zip(groups, group_ps, fdr, strict=True):
            lead = self._lead(members, connectors, links, persons, best_by_person, by_person, stock, n_tests,
                              (p, p_group, group_fdr))
            if lead is not None and lead.score >= self.min_score:
                leads.append(lead)
        since = getattr(context, "since", None)
        if since is not None:
            leads = [ld for ld in leads if ld.period_end is None or ld.period_end >= since]
        leads.sort(key=lambda ld: (-ld.score, ld.persons))
        return leads

    def _households(self, context: Any, persons: pd.DataFrame) -> pd.DataFrame:
        """Every phone/address shared by 2 to `max_share` persons, two or more of them tested: their summed
        observed and expected counts, combined p, and the member with the smallest own p (`first`)."""
        cols = ["o_shop", "e_shop", "o_sup", "e_sup"]
        try:
            links = person_links(context, int(self.max_share))
        except Exception:  # noqa: BLE001 — no phone/address columns: no household is tested
            log.debug("no person links; households are not tested", exc_info=True)
            return pd.DataFrame(columns=[*cols, "size", "p", "first"])
        links = links[links["psn_no"].isin(persons.index)][["psn_no", "link_type", "key"]]
        if links.empty:
            return pd.DataFrame(columns=[*cols, "size", "p", "first"])
        links = links.join(persons[[*cols, "p"]], on="psn_no").sort_values(["p", "psn_no"])
        hh = links.groupby(["link_type", "key"], sort=False).agg(
            size=("psn_no", "size"), first=("psn_no", "first"), **{c: (c, "sum") for c in cols})
        hh = hh[hh["size"] >= 2].copy()
        hh["p"] = self._fisher(hh["o_shop"], hh["e_shop"], hh["o_sup"], hh["e_sup"]) if len(hh) else []
        return hh

    def _groups(self, context: Any, candidates: set[str],
                persons: pd.DataFrame) -> list[tuple[list[str], list[str], list[dict[str, str]]]]:
        """Groups (tested members, connectors, linking edges): candidates joined through the phones/addresses
        they use, with the relatives on those keys that strengthen the group's test (see `_grow`)."""
        try:
            g = person_link_graph_around(context, sorted(candidates), int(self.max_share))
        except Exception:  # noqa: BLE001 — no phone/address columns: every candidate stands alone
            log.debug("no person link graph; candidates are not grouped", exc_info=True)
            g = ig.Graph()
            g.vs["name"] = []
        names = g.vs["name"] if g.vcount() else []
        index = {name: i for i, name in enumerate(names)}
        key_members: dict[int, list[str]] = {}
        for c in sorted(candidates):
            v = index.get(node_id("Person", c))
            if v is None:
                continue
            for k in g.neighbors(v):
                if k not in key_members:
                    key_members[k] = [g.vs[p]["name"].split(":", 1)[1] for p in g.neighbors(k)]
        # person-and-contacts components: the engine's components step (on Spark iterative joins on the cluster,
        # only the labels come back); a candidate on no shared key stands alone
        comps: dict[str, list[str]] = {}
        if key_members:
            labels = context.components(*person_link_edges_query(sorted(candidates), int(self.max_share)))
            for vertex, component in zip(labels["vertex"].tolist(), labels["component"].tolist(), strict=True):
                if vertex.startswith("Person:"):
                    comps.setdefault(component, []).append(vertex.split(":", 1)[1])
        for c in sorted(candidates - {p for people in comps.values() for p in people}):
            comps[node_id("Person", c)] = [c]
        # the keys each person is on, so that a component looks only at its own keys (a key none of whose persons
        # is in the component holds no kept member, connector or link of it)
        keys_of_person: dict[str, list[int]] = {}
        for k, kp in key_members.items():
            for p in kp:
                keys_of_person.setdefault(p, []).append(k)
        out = []
        for people in comps.values():
            in_comp = set(people)
            kept = self._grow(sorted(in_comp & candidates), sorted(in_comp - candidates), persons)
            kept_set = set(kept)
            comp_keys = sorted({k for p in in_comp for k in keys_of_person.get(p, ())})
            key_of = {k: [p for p in key_members[k] if p in kept_set] for k in comp_keys}
            # A person without tested windows who links two kept members (a leader) is kept as a connector.
            counts = Counter(p for k in comp_keys if key_of[k] for p in key_members[k]
                             if p not in kept_set and p in in_comp)
            reach = {p: {q for k in keys_of_person.get(p, ()) if k in key_of for q in key_of[k]} for p in counts}
            connectors = sorted(p for p, r in reach.items() if len(r) >= 2 and p not in persons.index)
            everyone = kept_set | set(connectors)
            links = []
            for k in comp_keys:
                kp = key_members[k]
                on_key = [p for p in kp if p in everyone]
                if len(on_key) >= 2:
                    for p in on_key:
                        etype = g.es[g.get_eid(index[node_id("Person", p)], k)]["type"]
                        links.append({"source": node_id("Person", p), "target": g.vs[k]["name"], "type": etype})
            links.sort(key=lambda x: (x["target"], x["source"]))
            out.append((sorted(kept), connectors, links))
        return out

    def _grow(self, start: list[str], relatives: list[str], persons: pd.DataFrame) -> list[str]:
        """The candidates of a group plus the relatives (tested persons on their phones/addresses), most
        surprising first, as long as each one makes the combined test stronger."""
        cols = ["o_shop", "e_shop", "o_sup", "e_sup"]
        kept = list(start)
        tot = persons.loc[kept, cols].sum().to_numpy(dtype=float)
        p_now = float(self._fisher(*[np.array([x]) for x in tot])[0])
        tested = [r for r in relatives if r in persons.index]
        for r in sorted(tested, key=lambda x: (float(persons.loc[x, "p"]), x)):
            cand = tot + persons.loc[r, cols].to_numpy(dtype=float)
            p_new = float(self._fisher(*[np.array([x]) for x in cand])[0])
            if p_new < p_now:
                kept.append(r)
                tot, p_now = cand, p_new
        return kept

    @staticmethod
    def _false_discovery(ps: list[float], n_tests: int) -> list[float]:
        """Benjamini–Hochberg: for each p, the share of chance findings to expect among the `n_tests` persons
        and households if everything at least this surprising were flagged — p × tests ÷ rank, made monotone
        (at most 1)."""
        order = sorted(range(len(ps)), key=lambda i: (ps[i], i))
        out = [0.0] * len(ps)
        running = math.inf
        for rank in range(len(order), 0, -1):
            i = order[rank - 1]
            running = min(running, ps[i] * n_tests / rank)
            out[i] = min(1.0, running)
        return out

    def _lead(self, members: list[str], connectors: list[str], links: list[dict[str, str]],
              persons: pd.DataFrame, best_by_person: dict[str, pd.DataFrame], by_person: dict[str, pd.DataFrame],
              stock: pd.DataFrame, n_tests: int, tests: tuple[float, float, float]) -> Lead | None:
        """The lead of one group, or None when chance explains it (`tests`: its p, combined p and FDR)."""
        p, p_group, fdr = tests
        # Whether to raise the lead: the number of persons/households this surprising chance alone gives
        # (Bonferroni; a lead chance explains several times over falls under `min_score`). Its tier: the
        # false-discovery rate at its surprise (`fdr`, Benjamini–Hochberg), the share of chance findings among
        # the leads at least this surprising — what an investigator's queue promises.
        expected = p * n_tests
        if self.score_base + self.score_per_decade * -math.log10(max(expected, 1e-300)) < self.min_score:
            return None
        fills = [by_person[m] for m in members if m in by_person]
        if not fills:
            return None
        rows = pd.concat([best_by_person[m] for m in members])
        evm = pd.concat(fills)
        o_shop, e_shop = float(rows["o_shop"].sum()), float(rows["e_shop"].sum())
        o_sup, e_sup = float(rows["o_sup"].sum()), float(rows["e_sup"].sum())
        q = min(1.0, expected)
        score = self.score_base + self.score_per_decade * -math.log10(max(fdr, 1e-300))
        excess_fills = max(0.0, o_sup - e_sup)
        excess_days = max(0.0, float(((rows["o_sup"] - rows["e_sup"]) * rows["fill_days"]).sum()))
        capped = excess_fills < float(self.min_excess_fills)
        if capped:
            score = min(score, ORANGE_AT - 0.01)
        score = max(0.0, min(1.0, score))

        pharmacies = set(evm.loc[evm["is_pharmacy"].astype(bool), "fixmedins_code"])
        drugs = sorted(set(evm["hilist_code"]))
        oversold = stock[stock["fixmedins_code"].isin(pharmacies) & stock["hilist_code"].isin(drugs)]
        over_ph = sorted(set(oversold["fixmedins_code"]))
        visits = evm.drop_duplicates("mdtrt_id")
        amount = float(visits["fund_pay_sumamt"].fillna(0).sum())
        fund_per_fill = amount / max(1, len(visits))
        prescribers = sorted({str(x) for x in evm["prescriber"].dropna() if str(x)})
        institutions = sorted(set(evm["fixmedins_code"]))
        # the most filled drug; ties to the smallest code (not to whichever row came first: that order follows
        # string hashing, so it changed from process to process)
        top_drug = min(Counter(evm["hilist_code"]).items(), key=lambda kv: (-kv[1], kv[0]))[0]
        collectors = sorted(set(members) & set(by_person))
        key_degree = Counter(link["source"] for link in links)
        leader = ""
        if links:
            leader = max(collectors + connectors, key=lambda x: (key_degree.get(node_id("Person", x), 0), x))
        n_keys = len({link["target"] for link in links})
        w = int(self.window_days)
        many = len(collectors) > 1
        who_en = (f"{len(collectors)} persons linked through {n_keys} shared phone(s)/address(es)"
                  + (f" around {leader}" if leader else "") if many else f"Person {collectors[0]}")
        who_zh = (f"{len(collectors)}名参保人通过{n_keys}个共用手机号/地址相互关联"
                  + (f"（关联人{leader}）" if leader else "") if many else f"参保人{collectors[0]}")
        reported = bool(rows["supply_used"].any())
        supply_en = (f"supply before the last fill {o_sup:.1f} fills where {e_sup:.1f} were expected "
                     f"({excess_days:.0f} days beyond need)" if reported else
                     f"days of supply not reported: {o_sup:.0f} repeat fills where the usual refill gap gives "
                     f"{e_sup:.1f}")
        supply_zh = (f"末次取药前供药{o_sup:.1f}次（按用药间隔应为{e_sup:.1f}次，超出需要约{excess_days:.0f}天）"
                     if reported else f"未报送取药天数：重复取药{o_sup:.0f}次（按常见取药间隔应为{e_sup:.1f}次）")
        over_en = f"; pharmacies selling more than they bought: {', '.join(over_ph)}" if over_ph else ""
        over_zh = f"；药店{'、'.join(over_ph)}的该药销售量超过采购量" if over_ph else ""
        cap_en = "; supply within need, so not above yellow" if capped else ""
        cap_zh = "；供药未超出需要，最高为黄色" if capped else ""
        explanation_en = (
            f"{who_en} obtained key drug(s) {', '.join(drugs)} in {len(visits)} fills within {w}-day windows from "
            f"{len(prescribers)} prescribers and {len(institutions)} institutions: {o_shop:.0f} new prescribers or "
            f"dispensers where patients of the drug average {e_shop:.1f}; {supply_en}. Chance p = {p:.1e}, "
            f"{expected:.2g} expected among the {n_tests} persons and households tested; false-discovery rate "
            f"{fdr:.2g}{over_en}{cap_en}."
        )
        explanation_zh = (
            f"{who_zh}在{w}天窗口内共{len(visits)}次取得重点药品{'、'.join(drugs)}，涉及{len(prescribers)}名开方医师、"
            f"{len(institutions)}家机构：新增开方医师/取药机构{o_shop:.0f}个（同药患者平均{e_shop:.1f}个）；{supply_zh}。"
            f"偶然概率p={p:.1e}，在全市{n_tests}个受检参保人及家庭中预期{expected:.2g}例；错误发现率{fdr:.2g}"
            f"{over_zh}{cap_zh}。"
        )
        features = {
            "collectors": collectors,
            "connectors": connectors,
            "leader": leader or None,
            "links": links,
            "shared_keys": n_keys,
            "fills": int(len(visits)),
            "prescribers": len(prescribers),
            "institutions": len(institutions),
            "max_prescribers_in_window": int(rows["prescribers"].max()),
            "max_pharmacies_in_window": int(rows["pharmacies"].max()),
            "new_prescribers_dispensers": {"observed": o_shop, "expected": round(e_shop, 3)},
            "supply_fills": {"observed": round(o_sup, 3), "expected": round(e_sup, 3)},
            "excess_fills": round(excess_fills, 2),
            "supply_reported": reported,
            "excess_days": round(excess_days, 1),
            "excess_fund": round(excess_fills * fund_per_fill, 2),
            "p_shopping": float(self._tail(np.array([o_shop]), np.array([e_shop]))[0]),
            "p_supply": float(self._tail(np.array([o_sup]), np.array([e_sup]))[0]),
            "p_value": p,
            "p_group": p_group,
            "family_wise_q": q,
            "expected_by_chance": expected,
            "false_discovery_rate": fdr,
            "persons_tested": n_tests,
            "member_p": {m: float(persons.loc[m, "p"]) for m in members},
            "top_drug": top_drug,
            "drugs": drugs,
            "overselling_pharmacies": over_ph,
            "oversold": oversold.assign(
                purchased=oversold["purchased"].astype(float), sold=oversold["sold"].astype(float)
            ).to_dict("records"),
        }
        start, end = evm["begntime"].min(), evm["begntime"].max()
        return Lead(
            kind=self.kind,
            score=score,
            persons=sorted(set(members) | set(connectors)),
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
