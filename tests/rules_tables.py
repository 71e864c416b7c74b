"""Tiny hand-built claims tables (the claims store's canonical columns) for rule and anomaly tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from fraudnet.contract import INPATIENT_MED_TYPES

__all__ = ["ClaimsBuilder"]

T0 = datetime(2025, 1, 1, 9, 0, 0)


class ClaimsBuilder:
    """Collects persons, institutions, catalogue items, visits and fee lines, then builds a DuckDB database
    with `psn_info`, `medins_info`, `prac_info`, `hilist`, `mdtrt`, `fee_list` and the `visit_fact` table."""

    def __init__(self) -> None:
        self.persons: list[dict[str, Any]] = []
        self.institutions: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []
        self.fees: list[dict[str, Any]] = []
        self._n = 0

    def person(self, psn_no: str, gend: str = "1", age: int = 40, admdvs: str = "310101",
               mob_hash: str | None = None) -> str:
        self.persons.append({"psn_no": psn_no, "gend": gend, "brdy": (T0 - timedelta(days=int(age * 365.25))).date(),
                             "live_admdvs": admdvs, "mob_hash": mob_hash, "addr_key": None})
        return psn_no

    def institution(self, code: str, ftype: str = "1", hosp_lv: str = "07", admdvs: str = "310101",
                    lnt: float = 121.4, lat: float = 31.2) -> str:
        self.institutions.append({"fixmedins_code": code, "fixmedins_name": f"机构{code}", "fixmedins_type": ftype,
                                  "hosp_lv": hosp_lv, "admdvs": admdvs, "lnt": lnt, "lat": lat})
        return code

    def item(self, code: str, name: str = "药品", list_type: str = "101", ceiling: float | None = None,
             max_days: float | None = 7, key: str = "0") -> str:
        self.items.append({"hilist_code": code, "hilist_name": name, "list_type": list_type,
                           "pric_uplmt_amt": ceiling, "max_days_per_fill": max_days, "key_drug_flag": key})
        return code

    def visit(self, psn: str, inst: str, begin: datetime, med_type: str = "11", days: float = 0, dise: str = "J06",
              fund: float = 100.0, doctor: str = "D000000000001", opter: str = "OP1", mdtrt_id: str | None = None,
              refunded: bool = False) -> str:
        self._n += 1
        mid = mdtrt_id or f"M{self._n:06d}"
        end = begin + timedelta(days=days)
        self.visits.append({
            "mdtrt_id": mid, "psn_no": psn, "fixmedins_code": inst, "med_type": med_type, "begntime": begin,
            "endtime": end, "atddr_no": doctor, "dise_codg": dise, "dise_name": dise, "opter_id": opter,
            "medfee_sumamt": fund * 1.25, "fund_pay_sumamt": fund, "refunded": refunded,
        })
        return mid

    def fee(self, mdtrt_id: str, code: str, when: datetime, cnt: float = 1, pric: float = 10.0,
            prd_days: float | None = None, sn: str | None = None, dr: str = "D000000000001") -> None:
        visit = next(v for v in self.visits if v["mdtrt_id"] == mdtrt_id)
        item = next((i for i in self.items if i["hilist_code"] == code), {})
        n = sum(1 for f in self.fees if f["mdtrt_id"] == mdtrt_id) + 1
        self.fees.append({
            "feedetl_sn": sn or f"{n:04d}", "mdtrt_id": mdtrt_id, "psn_no": visit["psn_no"], "fee_ocur_time": when,
            "hilist_code": code, "hilist_name": item.get("hilist_name", code), "list_type": item.get("list_type"),
            "cnt": cnt, "pric": pric, "det_item_fee_sumamt": round(cnt * pric, 2), "bilg_dr_codg": dr,
            "prd_days": prd_days,
        })

    def build(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        con = con or duckdb.connect()
        frames = {
            "psn_info": (self.persons, ["psn_no", "gend", "brdy", "live_admdvs", "mob_hash", "addr_key"]),
            "medins_info": (self.institutions, ["fixmedins_code", "fixmedins_name", "fixmedins_type", "hosp_lv",
                                                "admdvs", "lnt", "lat"]),
            "hilist": (self.items, ["hilist_code", "hilist_name", "list_type", "pric_uplmt_amt",
                                    "max_days_per_fill", "key_drug_flag"]),
            "fee_list": (self.fees, ["feedetl_sn", "mdtrt_id", "psn_no", "fee_ocur_time", "hilist_code",
                                     "hilist_name", "list_type", "cnt", "pric", "det_item_fee_sumamt",
                                     "bilg_dr_codg", "prd_days"]),
        }
        types = {"brdy": "DATE", "lnt": "DOUBLE", "lat": "DOUBLE", "pric_uplmt_amt": "DOUBLE",
                 "max_days_per_fill": "DOUBLE", "fee_ocur_time": "TIMESTAMP", "cnt": "DOUBLE", "pric": "DOUBLE",
                 "det_item_fee_sumamt": "DOUBLE", "prd_days": "DOUBLE"}
        for name, (rows, cols) in frames.items():
            columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in cols)
            con.execute(f"CREATE TABLE {name} ({columns})")
            if rows:
                frame = pd.DataFrame(rows, columns=cols)
                con.register("_rows", frame)
                con.execute(f"INSERT INTO {name} SELECT * FROM _rows")
                con.unregister("_rows")
        con.execute("CREATE TABLE prac_info (prac_psn_code VARCHAR, fixmedins_code VARCHAR, prac_psn_type VARCHAR)")
        inpatient = "', '".join(sorted(INPATIENT_MED_TYPES))
        con.execute("""
            CREATE TABLE visit_fact (
                mdtrt_id VARCHAR, psn_no VARCHAR, fixmedins_code VARCHAR, med_type VARCHAR, begntime TIMESTAMP,
                endtime TIMESTAMP, atddr_no VARCHAR, dise_codg VARCHAR, dise_name VARCHAR, opter_id VARCHAR,
                medfee_sumamt DOUBLE, fund_pay_sumamt DOUBLE, refunded BOOLEAN, is_inpatient BOOLEAN,
                los_days INTEGER, is_pharmacy BOOLEAN, fixmedins_type VARCHAR)""")
        if self.visits:
            frame = pd.DataFrame(self.visits)
            con.register("_rows", frame)
            con.execute(f"""
                INSERT INTO visit_fact SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.med_type, v.begntime,
                    v.endtime, v.atddr_no, v.dise_codg, v.dise_name, v.opter_id, v.medfee_sumamt,
                    v.fund_pay_sumamt, v.refunded, v.med_type IN ('{inpatient}'),
                    date_diff('day', v.begntime::DATE, v.endtime::DATE), v.med_type = '41', m.fixmedins_type
                FROM _rows v LEFT JOIN medins_info m USING (fixmedins_code)""")
            con.unregister("_rows")
        return con
