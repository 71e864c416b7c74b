"""Entity risk: one score per person, practitioner and institution from the active leads that involve it."""

from __future__ import annotations

import duckdb
import pandas as pd

__all__ = ["entity_risk", "RISK_COLUMNS"]

RISK_COLUMNS = ("entity_type", "entity_id", "score", "leads", "amount_at_risk", "top_kinds")


def entity_risk(con: duckdb.DuckDBPyConnection, include_dismissed: bool = False) -> pd.DataFrame:
    """Risk per entity from the lead store's active leads (dismissed ones left out unless asked).

    score = 1 − Π(1 − lead score) over the entity's leads (a noisy-or: several independent findings add up,
    one strong finding alone keeps its score); `top_kinds` are the entity's lead kinds by their best score,
    `;`-joined; `amount_at_risk` sums the leads' amounts. Institutions cover hospitals, clinics and pharmacies.
    """
    query = """
        WITH l AS (
            SELECT lead_id, kind, score, amount_at_risk, persons, practitioners, institutions FROM leads
            WHERE active AND (status <> 'dismissed' OR $inc)
        ), m AS (
            SELECT 'Person' AS entity_type, unnest(persons) AS entity_id, kind, score, amount_at_risk FROM l
            UNION ALL
            SELECT 'Practitioner', unnest(practitioners), kind, score, amount_at_risk FROM l
            UNION ALL
            SELECT 'Institution', unnest(institutions), kind, score, amount_at_risk FROM l
        ), k AS (
            SELECT entity_type, entity_id, kind, max(score) AS best FROM m GROUP BY ALL
        ), kk AS (
            SELECT entity_type, entity_id, string_agg(kind, ';' ORDER BY best DESC, kind) AS top_kinds
            FROM (SELECT *, row_number() OVER (PARTITION BY entity_type, entity_id ORDER BY best DESC, kind) AS rn
                  FROM k) WHERE rn <= 3 GROUP BY ALL
        )
        SELECT m.entity_type, m.entity_id,
               round(1 - exp(sum(ln(greatest(1e-9, 1 - least(m.score, 0.999999))))), 4) AS score,
               count(*) AS leads, round(sum(m.amount_at_risk), 2) AS amount_at_risk, kk.top_kinds
        FROM m JOIN kk USING (entity_type, entity_id)
        WHERE m.entity_id IS NOT NULL
        GROUP BY m.entity_type, m.entity_id, kk.top_kinds
        ORDER BY score DESC, amount_at_risk DESC, entity_type, entity_id
    """
    try:
        frame = con.execute(query, {"inc": include_dismissed}).df()
    except duckdb.CatalogException:  # no lead table yet: no risk
        frame = pd.DataFrame(columns=list(RISK_COLUMNS))
    return frame[list(RISK_COLUMNS)]
