"""A generated city cut into daily drops (as a bureau receives its files), and one more day made from its last one."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

__all__ = ["split_by_day", "next_day"]

REFERENCE_TABLES = ("psn_info", "medins_info", "prac_info", "hilist")
# fact table → the SQL date that places a row in a drop (fee lines and settlements follow their visit)
_VISIT_DAY = "CAST(CAST(begntime AS TIMESTAMP) AS DATE)"


def _q(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _csv(path: Path) -> str:
    return f"read_csv({_q(path)}, all_varchar = true, header = true, auto_detect = true)"


def _copy(con: duckdb.DuckDBPyConnection, select: str, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select}) TO {_q(out)} (HEADER, DELIMITER ',')")
    return int(con.execute(f"SELECT count(*) FROM {_csv(out)}").fetchall()[0][0])


def split_by_day(city: Path, out: Path, boundaries: list[date]) -> list[Path]:
    """Cut a generated CSV city into drops at `boundaries` (sorted dates): drop 0 holds the reference tables and
    the visits before the first boundary, drop i the visits from boundary i-1 up to boundary i, the last drop the
    rest. Settlements and fee lines go with their visit, pharmacy stock movements by their own day. Returns the
    drop folders in order (`drop-00`, `drop-01`, …); ingesting them one after the other loads the whole city."""
    city, out = Path(city), Path(out)
    edges = sorted(boundaries)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP TABLE _vd AS SELECT mdtrt_id, {_VISIT_DAY} AS d FROM {_csv(city / 'mdtrt.csv')}")
        folders = [out / f"drop-{i:02d}" for i in range(len(edges) + 1)]
        for i, folder in enumerate(folders):
            lo = edges[i - 1] if i > 0 else None
            hi = edges[i] if i < len(edges) else None

            def within(col: str, lo: date | None = lo, hi: date | None = hi) -> str:
                parts = ["true"]
                if lo is not None:
                    parts.append(f"{col} >= DATE {_q(lo.isoformat())}")
                if hi is not None:
                    parts.append(f"{col} < DATE {_q(hi.isoformat())}")
                return " AND ".join(parts)

            folder.mkdir(parents=True, exist_ok=True)
            if i == 0:
                for name in REFERENCE_TABLES:
                    _copy(con, f"SELECT * FROM {_csv(city / f'{name}.csv')}", folder / f"{name}.csv")
            _copy(con, f"SELECT * FROM {_csv(city / 'mdtrt.csv')} WHERE {within(_VISIT_DAY)}", folder / "mdtrt.csv")
            for name in ("setl", "fee_list"):
                _copy(con, f"SELECT x.* FROM {_csv(city / f'{name}.csv')} x JOIN _vd USING (mdtrt_id) "
                           f"WHERE {within('_vd.d')}", folder / f"{name}.csv")
            _copy(con, f"SELECT * FROM {_csv(city / 'phar_inv.csv')} "
                       f"WHERE {within('CAST(CAST(occur_time AS TIMESTAMP) AS DATE)')}", folder / "phar_inv.csv")
        return folders
    finally:
        con.close()


def next_day(city: Path, out: Path) -> tuple[date, dict[str, int]]:
    """One more day after a generated CSV city's last one: its last day's visits, settlements, fee lines and stock
    movements moved one day on, under new ids (mdtrt_id and setl_id prefix 32 for 31, fee line numbers starting
    with 9), written as a drop folder `out`. Returns the new day and the rows written per table."""
    city, out = Path(city), Path(out)
    con = duckdb.connect()
    try:
        last = con.execute(f"SELECT max({_VISIT_DAY}) FROM {_csv(city / 'mdtrt.csv')}").fetchall()[0][0]
        day = last + timedelta(days=1)

        def shift(col: str) -> str:
            return (f"CASE WHEN {col} IS NULL OR {col} = '' THEN {col} ELSE strftime(CAST({col} AS TIMESTAMP) "
                    f"+ INTERVAL 1 DAY, '%Y-%m-%d %H:%M:%S') END AS {col}")

        def new_id(col: str, old: str, new: str) -> str:
            return f"CASE WHEN starts_with({col}, '{old}') THEN '{new}' || substr({col}, 3) ELSE {col} END AS {col}"

        con.execute(f"CREATE TEMP TABLE _vd AS SELECT mdtrt_id FROM {_csv(city / 'mdtrt.csv')} "
                    f"WHERE {_VISIT_DAY} = DATE {_q(last.isoformat())}")
        counts = {}
        on_last = "JOIN _vd USING (mdtrt_id)"
        counts["mdtrt"] = _copy(con, f"SELECT * REPLACE ({new_id('mdtrt_id', '31', '32')}, {shift('begntime')}, "
                                     f"{shift('endtime')}) FROM {_csv(city / 'mdtrt.csv')} {on_last}",
                                out / "mdtrt.csv")
        counts["setl"] = _copy(con, f"SELECT * REPLACE ({new_id('setl_id', '31', '32')}, "
                                    f"{new_id('mdtrt_id', '31', '32')}, {shift('setl_time')}) "
                                    f"FROM {_csv(city / 'setl.csv')} {on_last}", out / "setl.csv")
        counts["fee_list"] = _copy(con, f"SELECT * REPLACE ('9' || substr(feedetl_sn, 2) AS feedetl_sn, "
                                        f"{new_id('mdtrt_id', '31', '32')}, {new_id('setl_id', '31', '32')}, "
                                        f"{shift('fee_ocur_time')}) FROM {_csv(city / 'fee_list.csv')} {on_last}",
                                   out / "fee_list.csv")
        counts["phar_inv"] = _copy(con, f"SELECT * REPLACE ({shift('occur_time')}) FROM "
                                        f"{_csv(city / 'phar_inv.csv')} WHERE CAST(CAST(occur_time AS TIMESTAMP) "
                                        f"AS DATE) = DATE {_q(last.isoformat())}", out / "phar_inv.csv")
        return day, counts
    finally:
        con.close()
