"""igraph projections of the claims store: co-admission, card co-swipe and person link (phone/address) graphs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import igraph as ig
import pandas as pd

__all__ = [
    "cached_projection",
    "inpatient_admissions",
    "co_admission_pairs",
    "co_admission_pairs_query",
    "person_link_edges_query",
    "co_admission_graph",
    "co_admission_events",
    "co_admission_events_of",
    "card_coswipe_graph",
    "person_links",
    "person_link_graph",
    "person_link_graph_around",
]

log = logging.getLogger(__name__)


def cached_projection(context: Any, key: str, build: Callable[[], Any]) -> Any:
    """The context's named result `key` (`ClaimsContext.named`), built once with `build()`; contexts without
    named results just build."""
    named = getattr(context, "named", None)
    if callable(named):
        return named(key, build)
    cache = getattr(context, "cache", None)
    if cache is None:
        return build()
    if key not in cache:
        cache[key] = build()
    return cache[key]


def inpatient_admissions(context: Any) -> pd.DataFrame:
    """Valid, not refunded inpatient admissions: one row per stay with its admission date, doctor, diagnosis, fees.

    Columns: mdtrt_id, psn_no, fixmedins_code, begntime, adm_date, atddr_no, dise_codg, dise3 (3-char ICD),
    los_days, medfee_sumamt, fund_pay_sumamt. Cached in `context.cache["projection:admissions"]`.
    """

    def build() -> pd.DataFrame:
        return context.sql(
            """
            SELECT mdtrt_id, psn_no, fixmedins_code, begntime, CAST(begntime AS DATE) AS adm_date,
                   atddr_no, dise_codg, left(coalesce(dise_codg, ''), 3) AS dise3,
                   coalesce(los_days, 0) AS los_days, coalesce(medfee_sumamt, 0) AS medfee_sumamt,
                   coalesce(fund_pay_sumamt, 0) AS fund_pay_sumamt
            FROM visit_fact
            WHERE is_inpatient AND NOT coalesce(refunded, FALSE)
            """
        )

    return cached_projection(context, "projection:admissions", build)


def co_admission_pairs(context: Any, window_days: int = 1, min_occasions: int = 2) -> pd.DataFrame:
    """Pairs of persons admitted as inpatients at the same institution within `window_days` of each other.

    One row per (fixmedins_code, psn_a < psn_b) with `occasions` = distinct admission dates of psn_a matched by
    an admission of psn_b, plus `n_a`, `n_b` (each person's admissions at that institution); only pairs with at
    least `min_occasions` occasions. Computed in DuckDB as a banded self-join on (institution, day).
    Cached per parameters.
    """
    return cached_projection(context, f"projection:co_admission_pairs:{int(window_days)}:{int(min_occasions)}",
                             lambda: context.sql(*co_admission_pairs_query(window_days, min_occasions)))


def co_admission_pairs_query(window_days: int = 1, min_occasions: int = 2) -> tuple[str, dict[str, int]]:
    """The SQL of `co_admission_pairs` and its parameters (for engines that group it where it lies)."""
    return (
        """
        WITH adm AS (
            SELECT DISTINCT psn_no, fixmedins_code, CAST(begntime AS DATE) AS d
            FROM visit_fact
            WHERE is_inpatient AND NOT coalesce(refunded, FALSE)
        ),
        cnt AS (
            SELECT fixmedins_code, psn_no, count(*) AS n FROM adm GROUP BY ALL
        ),
        shifted AS (
            SELECT a.psn_no, a.fixmedins_code, a.d, a.d + CAST(k AS INTEGER) AS d2
            FROM adm a, range(-$w, $w + 1) r(k)
        ),
        pairs AS (
            SELECT s.fixmedins_code, s.psn_no AS psn_a, b.psn_no AS psn_b,
                   count(DISTINCT s.d) AS occasions, min(s.d) AS first_day, max(s.d) AS last_day
            FROM shifted s JOIN adm b
              ON b.fixmedins_code = s.fixmedins_code AND b.d = s.d2 AND s.psn_no < b.psn_no
            GROUP BY ALL
            HAVING count(DISTINCT s.d) >= $m
        )
        SELECT p.*, ca.n AS n_a, cb.n AS n_b
        FROM pairs p
        JOIN cnt ca ON ca.fixmedins_code = p.fixmedins_code AND ca.psn_no = p.psn_a
        JOIN cnt cb ON cb.fixmedins_code = p.fixmedins_code AND cb.psn_no = p.psn_b
        ORDER BY p.fixmedins_code, p.psn_a, p.psn_b
        """,
        {"w": int(window_days), "m": int(min_occasions)},
    )


def co_admission_graph(pairs: pd.DataFrame, weight: str = "occasions") -> ig.Graph:
    """Undirected co-admission graph from `co_admission_pairs` rows (optionally pre-filtered).

    One vertex per (institution, person) — vertex attributes `name` (`<fixmedins_code>|<psn_no>`), `psn_no`,
    `fixmedins_code`; one edge per pair with attribute `weight` (from column `weight`) and every pair column.
    """
    if pairs.empty:
        g = ig.Graph()
        g.vs["name"] = []
        return g
    a = (pairs["fixmedins_code"] + "|" + pairs["psn_a"]).tolist()
    b = (pairs["fixmedins_code"] + "|" + pairs["psn_b"]).tolist()
    g = ig.Graph.TupleList(zip(a, b, strict=True), directed=False)
    for col in pairs.columns:
        g.es[col] = pairs[col].tolist()
    g.es["weight"] = [float(x) for x in pairs[weight]]
    names = g.vs["name"]
    g.vs["fixmedins_code"] = [n.split("|", 1)[0] for n in names]
    g.vs["psn_no"] = [n.split("|", 1)[1] for n in names]
    return g


def co_admission_events(context: Any, window_days: int = 1, min_admissions: int = 2) -> pd.DataFrame:
    """`co_admission_events_of` the store's inpatient admissions (cached per parameters)."""
    w, k_min = int(window_days), int(min_admissions)
    return cached_projection(context, f"projection:co_admission_events:{w}:{k_min}",
                             lambda: co_admission_events_of(inpatient_admissions(context), w, k_min))


def co_admission_events_of(admissions: pd.DataFrame, window_days: int = 1, min_admissions: int = 2) -> pd.DataFrame:
    """Every co-admission of two persons at one institution within `window_days`, with the window's volume.

    `admissions` has psn_no, fixmedins_code, adm_date (as `inpatient_admissions`). One row per
    (fixmedins_code, psn_a < psn_b, day) — `day` the earlier admission date (days since 1970) — with `crowd`
    (admissions at the institution within ±`window_days` of that date), `n_a`, `n_b` (each person's admission
    days there) and `n_inst` (the institution's admission days). Only persons with at least `min_admissions`
    admission days in all (a one-time patient cannot show repetition); rows without a date are left out.
    """
    w, k_min = int(window_days), int(min_admissions)
    cols = ["fixmedins_code", "psn_a", "psn_b", "day", "crowd", "n_a", "n_b", "n_inst"]
    adm = admissions[["psn_no", "fixmedins_code", "adm_date"]].dropna()
    if adm.empty:
        return pd.DataFrame(columns=cols)
    days = (pd.to_datetime(adm["adm_date"]) - pd.Timestamp("1970-01-01")).dt.days
    a = adm.assign(day=days.astype("int64"))[["psn_no", "fixmedins_code", "day"]].drop_duplicates()
    n_inst = a.groupby("fixmedins_code").size().rename("n_inst")
    daily = a.groupby(["fixmedins_code", "day"]).size().rename("k").reset_index()
    crowd = pd.concat([daily.assign(day=daily["day"] + s) for s in range(-w, w + 1)])
    crowd = crowd.groupby(["fixmedins_code", "day"])["k"].sum().rename("crowd")
    cnt = a.groupby(["fixmedins_code", "psn_no"]).size().rename("n")
    rep = a[a["psn_no"].map(a.groupby("psn_no").size()) >= k_min]
    parts = []
    for s in range(0, w + 1):
        m = rep.merge(rep.assign(day=rep["day"] - s), on=["fixmedins_code", "day"], suffixes=("_x", "_y"))
        parts.append(m[m["psn_no_x"] < m["psn_no_y"]] if s == 0 else m[m["psn_no_x"] != m["psn_no_y"]])
    m = pd.concat(parts, ignore_index=True)
    if m.empty:
        return pd.DataFrame(columns=cols)
    lo = m[["psn_no_x", "psn_no_y"]].min(axis=1)
    hi = m[["psn_no_x", "psn_no_y"]].max(axis=1)
    ev = pd.DataFrame({"fixmedins_code": m["fixmedins_code"], "psn_a": lo, "psn_b": hi, "day": m["day"]})
    ev = ev.drop_duplicates(["fixmedins_code", "psn_a", "psn_b", "day"])
    ev = ev.join(crowd, on=["fixmedins_code", "day"]).join(n_inst, on="fixmedins_code")
    ev = ev.join(cnt.rename("n_a"), on=["fixmedins_code", "psn_a"])
    ev = ev.join(cnt.rename("n_b"), on=["fixmedins_code", "psn_b"])
    return ev[cols].reset_index(drop=True)

def card_coswipe_graph(swipes: pd.DataFrame, min_shared: int = 2) -> ig.Graph:
    """Graph of settling points (operator or pharmacy keys) linked when they swiped the same cards.

    `swipes` has columns `point` (e.g. `<fixmedins_code>|<opter_id>` or an episode id) and `psn_no`; an edge
    joins two points sharing at least `min_shared` distinct cards, attribute `shared` = the number shared.
    Every point is a vertex (isolated points form their own component).
    """
    points = sorted(set(swipes["point"])) if not swipes.empty else []
    g = ig.Graph()
    g.add_vertices(points)
    if swipes.empty:
        return g
    s = swipes[["point", "psn_no"]].drop_duplicates()
    m = s.merge(s, on="psn_no")
    m = m[m["point_x"] < m["point_y"]]
    if m.empty:
        return g
    shared = m.groupby(["point_x", "point_y"]).size().reset_index(name="shared")
    shared = shared[shared["shared"] >= min_shared]
    if not shared.empty:
        g.add_edges(list(zip(shared["point_x"], shared["point_y"], strict=True)))
        g.es["shared"] = shared["shared"].astype(int).tolist()
    return g


def person_links(context: Any, max_share: int = 30) -> pd.DataFrame:
    """Person–phone and person–address links from `psn_info` (hashed `mob_hash`, normalised `addr_key`).

    Columns: psn_no, link_type (`phone` | `address`), key, share (persons sharing that key). Keys shared by
    more than `max_share` persons (placeholders, dormitories, care homes) are dropped as non-informative.
    Cached per `max_share`.
    """
    max_share = int(max_share)

    def build() -> pd.DataFrame:
        return context.sql(
            """
            WITH l AS (
                SELECT psn_no, 'phone' AS link_type, mob_hash AS key FROM psn_info
                WHERE mob_hash IS NOT NULL AND mob_hash <> ''
                UNION ALL
                SELECT psn_no, 'address' AS link_type, addr_key AS key FROM psn_info
                WHERE addr_key IS NOT NULL AND addr_key <> ''
            ),
            s AS (SELECT link_type, key, count(DISTINCT psn_no) AS share FROM l GROUP BY ALL)
            SELECT DISTINCT l.psn_no, l.link_type, l.key, s.share
            FROM l JOIN s USING (link_type, key)
            WHERE s.share BETWEEN 2 AND $m
            ORDER BY l.link_type, l.key, l.psn_no
            """,
            {"m": max_share},
        )

    return cached_projection(context, f"projection:person_links:{max_share}", build)


def _link_graph(links: pd.DataFrame) -> ig.Graph:
    if links.empty:
        g = ig.Graph()
        g.vs["name"] = []
        return g
    ntype = links["link_type"].map({"phone": "Phone", "address": "Address"}).tolist()
    src = ["Person:" + p for p in links["psn_no"].tolist()]
    dst = [t + ":" + k for t, k in zip(ntype, links["key"].tolist(), strict=True)]
    g = ig.Graph.TupleList(zip(src, dst, strict=True), directed=False)
    g.es["type"] = links["link_type"].map({"phone": "USES_PHONE", "address": "LIVES_AT"}).tolist()
    names = g.vs["name"]
    g.vs["type"] = [n.split(":", 1)[0] for n in names]
    g.vs["key"] = [n.split(":", 1)[1] for n in names]
    log.debug("person link graph: %d vertices, %d edges", g.vcount(), g.ecount())
    return g


def person_link_graph(context: Any, max_share: int = 30) -> ig.Graph:
    """Bipartite person link graph: `Person:<psn_no>` vertices joined to the `Phone:<hash>` / `Address:<key>`
    vertices they share with at least one other person (keys shared by more than `max_share` persons dropped).

    Vertex attributes: `name` (graph node id), `type` (Person/Phone/Address), `key`; edge attribute `type`
    (`USES_PHONE` / `LIVES_AT`). Cached per `max_share`.
    """
    return cached_projection(
        context, f"projection:person_link_graph:{int(max_share)}", lambda: _link_graph(person_links(context, max_share))
    )


def person_link_graph_around(context: Any, persons: list[str], max_share: int = 30) -> ig.Graph:
    """The part of `person_link_graph` around `persons`: the phones/addresses they use (shared by 2 to
    `max_share` persons) and every person on those keys. Built in SQL for just those keys (not cached)."""
    if not persons:
        return _link_graph(pd.DataFrame(columns=["psn_no", "link_type", "key", "share"]))
    links = context.sql(_LINKS_AROUND, {"persons": list(persons), "m": int(max_share)})
    return _link_graph(links)


_LINKS_AROUND = """
    WITH l AS (
        SELECT psn_no, 'phone' AS link_type, mob_hash AS key FROM psn_info
        WHERE mob_hash IS NOT NULL AND mob_hash <> ''
        UNION ALL
        SELECT psn_no, 'address' AS link_type, addr_key AS key FROM psn_info
        WHERE addr_key IS NOT NULL AND addr_key <> ''
    ),
    k AS (SELECT DISTINCT link_type, key FROM l WHERE psn_no IN (SELECT unnest($persons))),
    lk AS (SELECT l.* FROM l JOIN k USING (link_type, key)),
    s AS (SELECT link_type, key, count(DISTINCT psn_no) AS share FROM lk GROUP BY ALL)
    SELECT DISTINCT lk.psn_no, lk.link_type, lk.key, s.share
    FROM lk JOIN s USING (link_type, key)
    WHERE s.share BETWEEN 2 AND $m
    ORDER BY lk.link_type, lk.key, lk.psn_no
    """


def person_link_edges_query(persons: list[str], max_share: int = 30) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of the edges (`src` = `Person:<psn_no>`, `dst` = `Phone:<hash>` / `Address:<key>`) of
    `person_link_graph_around(persons)`, for an engine's `components` step."""
    return (f"""
        SELECT DISTINCT 'Person:' || psn_no AS src,
               CASE link_type WHEN 'phone' THEN 'Phone:' ELSE 'Address:' END || key AS dst
        FROM ({_LINKS_AROUND}) AS around
        """, {"persons": list(persons), "m": int(max_share)})
