"""Facts a lead's chart recipe draws, read from the claims store: shared contacts, evidence visits, drug fills."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ChartVisit", "DrugFill", "shared_contacts", "chart_visits", "drug_fills"]


@dataclass(frozen=True)
class ChartVisit:
    """One evidence visit as a chart recipe groups it."""

    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    fixmedins_type: str | None
    med_type: str | None
    begntime: datetime | None
    endtime: datetime | None
    atddr_no: str | None
    opter_id: str | None
    fund_pay: float
    medfee: float


@dataclass(frozen=True)
class DrugFill:
    """One key-drug line of an evidence visit: who, where, what, how much, how many days of supply."""

    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    hilist_code: str
    hilist_name: str | None
    cnt: float
    prd_days: float | None
    amount: float
    at: datetime | None
    prescriber: str | None


def shared_contacts(con: Any, persons: Sequence[str], min_members: int = 2) -> list[tuple[str, str, list[str]]]:
    """Phones and addresses shared by at least `min_members` of `persons`: (node type, key, member psn_nos)."""
    persons = [str(p) for p in persons if p]
    if not persons:
        return []
    rows = con.execute(
        """
        WITH m AS (SELECT psn_no, mob_hash, addr_key FROM psn_info WHERE psn_no IN (SELECT unnest(?::VARCHAR[])))
        SELECT 'Phone' AS t, mob_hash AS k, list(psn_no ORDER BY psn_no) FROM m
        WHERE mob_hash IS NOT NULL AND mob_hash <> '' GROUP BY mob_hash HAVING count(*) >= ?
        UNION ALL
        SELECT 'Address', addr_key, list(psn_no ORDER BY psn_no) FROM m
        WHERE addr_key IS NOT NULL AND addr_key <> '' GROUP BY addr_key HAVING count(*) >= ?
        ORDER BY 1, 2
        """, [persons, min_members, min_members]).fetchall()
    return [(str(t), str(k), [str(p) for p in ps]) for t, k, ps in rows]


def chart_visits(con: Any, mdtrt_ids: Sequence[str]) -> list[ChartVisit]:
    """The visits with these ids (unknown ids left out), in time order."""
    ids = [str(i) for i in mdtrt_ids if i]
    if not ids:
        return []
    rows = con.execute(
        """
        SELECT mdtrt_id, psn_no, fixmedins_code, fixmedins_type, med_type, begntime, endtime, atddr_no, opter_id,
               coalesce(fund_pay_sumamt, 0), coalesce(medfee_sumamt, 0)
        FROM visit_fact WHERE mdtrt_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY begntime, mdtrt_id
        """, [ids]).fetchall()
    return [ChartVisit(str(r[0]), str(r[1]), str(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], float(r[9]),
                       float(r[10])) for r in rows]


def drug_fills(con: Any, mdtrt_ids: Sequence[str], key_drugs_only: bool = True) -> list[DrugFill]:
    """Drug lines (list types 101/102) of these visits; only 重点监测药品 when the catalogue flags any."""
    ids = [str(i) for i in mdtrt_ids if i]
    if not ids:
        return []
    key_filter = ""
    if key_drugs_only:
        flagged = con.execute("SELECT count(*) FROM hilist WHERE key_drug_flag = '1'").fetchone()[0]
        if flagged:
            key_filter = "AND f.hilist_code IN (SELECT hilist_code FROM hilist WHERE key_drug_flag = '1')"
    rows = con.execute(
        f"""
        SELECT f.mdtrt_id, v.psn_no, v.fixmedins_code, f.hilist_code, any_value(f.hilist_name),
               sum(coalesce(f.cnt, 0)), sum(f.prd_days), sum(coalesce(f.det_item_fee_sumamt, 0)),
               min(coalesce(f.fee_ocur_time, v.begntime)), any_value(coalesce(f.bilg_dr_codg, v.atddr_no))
        FROM fee_list f JOIN visit_fact v USING (mdtrt_id)
        WHERE f.mdtrt_id IN (SELECT unnest(?::VARCHAR[])) AND (f.list_type IS NULL OR f.list_type IN ('101', '102'))
          AND coalesce(f.vali_flag, '1') <> '0' {key_filter}
        GROUP BY f.mdtrt_id, v.psn_no, v.fixmedins_code, f.hilist_code ORDER BY 9, 1, 4
        """, [ids]).fetchall()
    return [DrugFill(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], float(r[5]),
                     None if r[6] is None else float(r[6]), float(r[7]), r[8], r[9]) for r in rows]
