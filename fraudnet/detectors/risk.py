"""Entity risk: one score per person, practitioner and institution from its leads, weighed with its exposure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas and duckdb load lazily: the CLI reads RISK_FORMULA for its help
    import pandas as pd

__all__ = ["entity_risk", "RISK_COLUMNS", "RISK_FORMULA", "EXPOSURE_WEIGHT", "FULL_SHARE", "MENTION_WEIGHT"]

RISK_COLUMNS = ("entity_type", "entity_id", "score", "leads", "amount_at_risk", "top_kinds")

# Size alone is never a finding: the exposure part of a clean entity's risk stays below 0.4 (inside yellow), so an
# entity's own material lead of score s ≥ 0.4 lifts it above every clean one, while among clean entities (and
# entities with equal evidence) the bigger fund ranks first — ranking by risk falls back to ranking by amount.
EXPOSURE_WEIGHT = 0.4
# A lead whose evidence carries a tenth of the entity's own fund paid is a finding about the entity as a whole and
# counts fully; below that its weight falls linearly to MENTION_WEIGHT, the weight of a lead that merely names the
# entity (a hospital where an impersonated card was used once, a pharmacy in a drug-resale chain's visits):
# whether such a lead is about the entity or about others who used it is, without its money, a coin toss.
FULL_SHARE = 0.10
MENTION_WEIGHT = 0.5

RISK_FORMULA = (
    "risk = 1 − (1 − 0.4·u) · Π over the entity's active leads (1 − s·m).  "
    "u = the entity's fund paid (non-refunded visits) as a cumulative rank within its entity type (0–1; "
    "exposure; 0 for persons, scored on their leads alone); s = the lead's calibrated score (its tier: "
    "red ≥ 0.8, orange ≥ 0.6; peer-anomaly leads count like any other); "
    "m = 0.5 + 0.5·min(1, share/0.10), share = fund on the lead's evidence visits that "
    "involve this entity / the entity's fund paid (m = 1 when the store has no visits to weigh it). "
    "No leads: 0.4·u, the order of fund paid. Dismissed leads are left out."
)


def entity_risk(con: Any, include_dismissed: bool = False) -> pd.DataFrame:
    """Risk per entity from the lead store's active leads (dismissed ones left out unless asked) and, when the
    claims store is in the same database, the entity's exposure (see `RISK_FORMULA`).

    Every institution and practitioner with visits gets a row (risk from exposure alone when no lead names it);
    persons only when a lead names them, on the evidence alone (no exposure term: a person's fund paid says
    more about their illness than their risk). `leads` counts the entity's leads, `amount_at_risk` sums their amounts,
    `top_kinds` are its lead kinds by their best score (`;`-joined, at most 3). Institutions cover hospitals,
    clinics and pharmacies.
    """
    import duckdb
    import pandas as pd

    has_visits = _has_table(con, "visit_fact")
    try:
        con.execute("SELECT lead_id, kind, score, amount_at_risk, persons, practitioners, institutions, evidence, "
                    "active, status FROM leads LIMIT 0")
        has_leads = True
    except duckdb.Error:
        has_leads = False
    if not has_leads and not has_visits:
        return pd.DataFrame(columns=list(RISK_COLUMNS))
    lead_rows = """
        SELECT lead_id, kind, least(greatest(coalesce(score, 0), 0), 1) AS score,
               coalesce(amount_at_risk, 0) AS amount_at_risk, persons, practitioners, institutions, evidence
        FROM leads WHERE active AND (status <> 'dismissed' OR $inc)
    """ if has_leads else """
        SELECT NULL::VARCHAR AS lead_id, NULL::VARCHAR AS kind, 0.0 AS score, 0.0 AS amount_at_risk,
               []::VARCHAR[] AS persons, []::VARCHAR[] AS practitioners, []::VARCHAR[] AS institutions,
               []::VARCHAR[] AS evidence WHERE false
    """
    if has_visits:
        exposure = """
            vf AS MATERIALIZED (SELECT mdtrt_id, psn_no, atddr_no, fixmedins_code, coalesce(fund_pay_sumamt, 0) AS fund
                   FROM visit_fact WHERE NOT coalesce(refunded, false)),
            fund AS (
                SELECT 'Institution' AS entity_type, fixmedins_code AS entity_id, sum(fund) AS fund FROM vf
                WHERE fixmedins_code IS NOT NULL GROUP BY ALL
                UNION ALL
                SELECT 'Practitioner', atddr_no, sum(fund) FROM vf WHERE atddr_no IS NOT NULL AND atddr_no <> ''
                GROUP BY ALL
                UNION ALL
                SELECT 'Person', psn_no, sum(fund) FROM vf  -- only the persons leads name: their fund weighs m
                WHERE psn_no IN (SELECT entity_id FROM m WHERE entity_type = 'Person') GROUP BY ALL
            ),
            u AS MATERIALIZED (SELECT *, cume_dist() OVER (PARTITION BY entity_type ORDER BY fund) AS u FROM fund),
            ev AS (SELECT DISTINCT lead_id, unnest(evidence) AS mdtrt_id FROM l),
            evv AS MATERIALIZED (SELECT ev.lead_id, vf.* FROM ev JOIN vf USING (mdtrt_id)),
            matched AS (SELECT DISTINCT lead_id FROM evv),
            ea AS (
                SELECT lead_id, 'Institution' AS entity_type, fixmedins_code AS entity_id, sum(fund) AS amt FROM evv
                GROUP BY ALL
                UNION ALL SELECT lead_id, 'Practitioner', atddr_no, sum(fund) FROM evv GROUP BY ALL
                UNION ALL SELECT lead_id, 'Person', psn_no, sum(fund) FROM evv GROUP BY ALL
            ),
        """
        weight = f"""
            CASE WHEN mt.lead_id IS NULL OR coalesce(u.fund, 0) <= 0 THEN 1.0
                 ELSE {MENTION_WEIGHT} + {1 - MENTION_WEIGHT}
                      * least(1.0, coalesce(ea.amt, 0) / u.fund / {FULL_SHARE}) END
        """
        joins = """
            LEFT JOIN u USING (entity_type, entity_id)
            LEFT JOIN matched mt ON mt.lead_id = m.lead_id
            LEFT JOIN ea ON ea.lead_id = m.lead_id AND ea.entity_type = m.entity_type AND ea.entity_id = m.entity_id
        """
        clean = "SELECT entity_type, entity_id, u FROM u WHERE entity_type <> 'Person'"
    else:
        exposure, weight, joins = "", "1.0", ""
        clean = "SELECT NULL::VARCHAR AS entity_type, NULL::VARCHAR AS entity_id, 0.0 AS u WHERE false"
    query = f"""
        WITH l AS MATERIALIZED ({lead_rows}),
        m0 AS (
            SELECT 'Person' AS entity_type, unnest(persons) AS entity_id, lead_id, kind, score, amount_at_risk FROM l
            UNION ALL
            SELECT 'Practitioner', unnest(practitioners), lead_id, kind, score, amount_at_risk FROM l
            UNION ALL
            SELECT 'Institution', unnest(institutions), lead_id, kind, score, amount_at_risk FROM l
        ),
        m AS MATERIALIZED (SELECT DISTINCT * FROM m0 WHERE entity_id IS NOT NULL),
        {exposure}
        mq AS (
            SELECT m.entity_type, m.entity_id, m.kind, m.score, m.amount_at_risk,
                   m.score * ({weight}) AS q
            FROM m {joins}
        ),
        k AS (SELECT entity_type, entity_id, kind, max(score) AS best FROM mq GROUP BY ALL),
        kk AS (
            SELECT entity_type, entity_id, string_agg(kind, ';' ORDER BY best DESC, kind) AS top_kinds
            FROM (SELECT *, row_number() OVER (PARTITION BY entity_type, entity_id ORDER BY best DESC, kind) AS rn
                  FROM k) WHERE rn <= 3 GROUP BY ALL
        ),
        ev_agg AS (
            SELECT entity_type, entity_id, exp(sum(ln(greatest(1e-9, 1 - least(q, 0.999999))))) AS keep,
                   count(*) AS leads, sum(amount_at_risk) AS amount_at_risk
            FROM mq GROUP BY ALL
        ),
        ent AS (
            SELECT entity_type, entity_id FROM ev_agg
            UNION
            SELECT entity_type, entity_id FROM ({clean})
        ),
        ex AS ({clean})
        SELECT ent.entity_type, ent.entity_id,
               round(1 - coalesce(a.keep, 1.0) * (1 - {EXPOSURE_WEIGHT} * coalesce(ex.u, 0.0)), 6) AS score,
               coalesce(a.leads, 0) AS leads, round(coalesce(a.amount_at_risk, 0), 2) AS amount_at_risk,
               coalesce(kk.top_kinds, '') AS top_kinds
        FROM ent LEFT JOIN ev_agg a USING (entity_type, entity_id)
        LEFT JOIN ex USING (entity_type, entity_id)
        LEFT JOIN kk USING (entity_type, entity_id)
        ORDER BY score DESC, amount_at_risk DESC, entity_type, entity_id
    """
    frame = con.execute(query, {"inc": include_dismissed} if has_leads else {}).df()
    frame["leads"] = frame["leads"].astype("int64")
    return frame[list(RISK_COLUMNS)]


def _has_table(con: Any, name: str) -> bool:
    import duckdb

    try:
        con.execute(f"SELECT * FROM {name} LIMIT 0")
    except duckdb.Error:
        return False
    return True
