"""Perturbations of a city folder (contract tables + truth.json) for the detection quality harness.

Usage: `.venv/bin/python -m bench.perturb SRC DST --kind drop_fee_lines|renamed|day_times|volume_x10|volume_div10
[--seed N]`. Every perturbation reads any city folder (the product generator's or another one's), writes a new
folder with the same tables and an adjusted truth.json, and is deterministic by seed (row content; row order of
the rewritten tables may differ between runs). Tables are streamed through DuckDB, so 200k-person cities fit.

truth.json gains a `perturbation` entry: its name, seed, what was changed, and `unsupported` — the planted
schemes whose evidence the perturbation took away (fee lines gone, time of day gone). The harness shows those
kinds but leaves them out of its pass/fail floor: there the honest expectation is no false leads from absent
data, not full recall.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from fraudnet.contract import INPATIENT_MED_TYPES

__all__ = ["PERTURBATIONS", "FEE_LINE_KINDS", "TIME_OF_DAY_KINDS", "perturb", "drop_fee_lines", "rename_codes",
           "round_times_to_day", "scale_volume", "read_city"]

TABLES = ("psn_info", "medins_info", "prac_info", "mdtrt", "setl", "fee_list", "hilist", "phar_inv")
# Columns holding a date-time (contract type DT), by lower-case name, aliases included.
TIME_COLUMNS = frozenset({"begntime", "endtime", "setl_time", "fee_ocur_time", "occur_time", "purc_retn_stoin_time",
                          "sel_retn_time", "invdate"})
# Code roles of columns (lower-case names, contract aliases included); diagnosis codes are never renamed.
CODE_ROLES: dict[str, str] = {
    "psn_no": "person",
    "fixmedins_code": "institution", "medins_code": "institution",
    "prac_psn_code": "practitioner", "atddr_no": "practitioner", "dr_codg": "practitioner",
    "chfpdr_code": "practitioner", "bilg_dr_codg": "practitioner", "bilg_dr_code": "practitioner",
    "hilist_code": "drug", "med_list_codg": "drug",
}
# Kinds whose planted evidence lives in the fee lines (prices, quantities, days of supply, bed-day items,
# duplicate items, the key drugs bought): without a visit's fee lines there is nothing to see.
FEE_LINE_KINDS = frozenset({"rule:over_standard_price", "rule:over_quantity", "rule:duplicate_charge",
                            "rule:bed_hanging", "drug_resale"})
# Kinds whose planted evidence needs the time of day (implied travel speed between two places the same day;
# 120-minute swipe bursts at off hours; the same item billed twice at the same second of one visit).
TIME_OF_DAY_KINDS = frozenset({"rule:impersonation", "card_skimming", "rule:duplicate_charge"})
# A fee-line scheme is unsupported when less than this share of its evidence visits keeps its fee lines.
MIN_SUPPORTED_SHARE = 0.5


# ---------------------------------------------------------------------------------------------- reading
class City:
    """A city folder opened for rewriting: its table files, truth and a DuckDB connection with a view per table
    (every column as VARCHAR, the names as written in the file)."""

    def __init__(self, folder: Path, work_dir: Path) -> None:
        from fraudnet.ingest.readers import discover_files

        self.folder = Path(folder)
        self.files: dict[str, Path] = {}
        self.other_files: list[Path] = []
        matched, unmatched = discover_files(self.folder)
        for f in matched:
            if f.spec.name in self.files:
                raise ValueError(f"{self.folder}: two files for table {f.spec.name}: {self.files[f.spec.name].name}, "
                                 f"{f.path.name}")
            if f.format not in ("csv", "parquet"):
                raise ValueError(f"{f.path}: perturbations read CSV or Parquet, not {f.format}")
            self.files[f.spec.name] = f.path
        self.other_files = [p for p in unmatched if p.name != "truth.json"]
        for table in ("psn_info", "medins_info", "mdtrt", "setl", "fee_list"):
            if table not in self.files:
                raise ValueError(f"{self.folder}: no {table} table")
        self.truth: dict = json.loads((self.folder / "truth.json").read_text(encoding="utf-8"))
        work_dir.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect()
        self.con.execute("SET threads = 2")
        self.con.execute("SET memory_limit = '3GB'")
        self.con.execute(f"SET temp_directory = {_lit(str(work_dir))}")
        self.columns: dict[str, list[str]] = {}
        for table, path in self.files.items():
            if path.suffix.lower() == ".parquet":
                src = f"read_parquet({_lit(str(path))})"
            else:
                src = f"read_csv({_lit(str(path))}, header = true, all_varchar = true, quote = '\"', escape = '\"')"
            cols = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
            self.columns[table] = cols
            select = ", ".join(f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in cols)
            self.con.execute(f"CREATE VIEW {table} AS SELECT {select} FROM {src}")

    def col(self, table: str, name: str) -> str | None:
        """The column of `table` whose lower-case name is `name` (as written in the file), or None."""
        for c in self.columns.get(table, ()):
            if c.lower() == name:
                return c
        return None

    def evidence(self) -> set[str]:
        return {ev for s in self.truth.get("schemes", []) for ev in s.get("evidence") or []}

    def close(self) -> None:
        self.con.close()


def read_city(folder: Path, work_dir: Path | None = None) -> City:
    """Open a city folder for perturbation (scratch space for DuckDB in `work_dir`, default `folder/../.duck`)."""
    return City(Path(folder), Path(work_dir) if work_dir else Path(folder).parent / ".duck")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write(city: City, table: str, select_sql: str, dst: Path) -> int:
    """Write `select_sql` as `dst/<table>.csv` (header, contract columns as read); returns rows written."""
    out = dst / f"{table}.csv"
    city.con.execute(f"COPY ({select_sql}) TO {_lit(str(out))} (FORMAT csv, HEADER true, QUOTE '\"')")
    return int(city.con.execute(f"SELECT count(*) FROM read_csv({_lit(str(out))}, header = true, "
                                "all_varchar = true)").fetchone()[0])


def _copy_unchanged(city: City, dst: Path, tables: set[str]) -> None:
    """Hard-link (or copy) the table files not rewritten, and any other file of the folder except truth.json."""
    for table, path in city.files.items():
        if table not in tables:
            _link(path, dst / path.name)
    for path in city.other_files:
        _link(path, dst / path.name)


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _prepare(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)


def _unit_hash(expr: str, seed: int, salt: str) -> str:
    """SQL for a deterministic pseudo-random number in [0, 1) from `expr` and the seed (md5, stable everywhere)."""
    return f"(CAST(('0x' || substr(md5({_lit(f'{seed}:{salt}:')} || {expr}), 1, 8)) AS UBIGINT) / 4294967296.0)"


def _finish(city: City, dst: Path, name: str, seed: int, changes: dict, unsupported: list[dict]) -> dict:
    truth = dict(city.truth)
    truth["perturbation"] = {"name": name, "seed": seed, "changes": changes, "unsupported": unsupported}
    (dst / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth["perturbation"]


# ---------------------------------------------------------------------------------------------- (a) fee lines
def drop_fee_lines(src: Path, dst: Path, seed: int, share: float = 0.3) -> dict:
    """Drop every fee line of the visits at a random `share` of the institutions (hospitals and pharmacies alike),
    as when some institutions send no fee detail. Fee-line schemes (FEE_LINE_KINDS) that lose most of their
    evidence's fee lines are marked unsupported."""
    dst = Path(dst)
    _prepare(dst)
    city = read_city(src, dst.parent / f".duck-{dst.name}")
    try:
        code = _q(city.col("medins_info", "fixmedins_code") or city.col("medins_info", "medins_code"))
        insts = sorted(r[0] for r in city.con.execute(f"SELECT DISTINCT {code} FROM medins_info").fetchall())
        rng = np.random.default_rng(seed)
        n_drop = int(round(share * len(insts)))
        dropped = sorted(rng.choice(insts, size=n_drop, replace=False).tolist()) if n_drop else []
        city.con.execute("CREATE TEMP TABLE _dropped (code VARCHAR)")
        city.con.executemany("INSERT INTO _dropped VALUES (?)", [[c] for c in dropped])
        m_id, m_inst = _q(city.col("mdtrt", "mdtrt_id")), _q(city.col("mdtrt", "fixmedins_code")
                                                               or city.col("mdtrt", "medins_code"))
        city.con.execute(f"CREATE TEMP TABLE _gone AS SELECT {m_id} AS id FROM mdtrt WHERE {m_inst} IN "
                         "(SELECT code FROM _dropped)")
        f_id = _q(city.col("fee_list", "mdtrt_id"))
        before = int(city.con.execute("SELECT count(*) FROM fee_list").fetchone()[0])
        kept = _write(city, "fee_list", f"SELECT * FROM fee_list WHERE {f_id} NOT IN (SELECT id FROM _gone)", dst)
        _copy_unchanged(city, dst, {"fee_list"})
        gone = {r[0] for r in city.con.execute(
            "SELECT id FROM _gone WHERE id IN (SELECT unnest(?::VARCHAR[]))", [sorted(city.evidence())]).fetchall()}
        unsupported = []
        for s in city.truth.get("schemes", []):
            ev = s.get("evidence") or []
            if s.get("kind") in FEE_LINE_KINDS and ev:
                lost = sum(1 for e in ev if e in gone) / len(ev)
                if 1 - lost < MIN_SUPPORTED_SHARE:
                    unsupported.append({"scheme_id": s.get("scheme_id"), "kind": s["kind"],
                                        "reason": f"{lost:.0%} of its evidence visits lost their fee lines"})
        changes = {"institutions_dropped": dropped, "institutions": len(insts), "fee_lines_before": before,
                   "fee_lines_after": kept}
        return _finish(city, dst, "drop_fee_lines", seed, changes, unsupported)
    finally:
        city.close()


# ---------------------------------------------------------------------------------------------- (b) renamed
def _new_codes(codes: list[str], seed: int, role: str) -> dict[str, str]:
    """A seeded one-to-one renaming of `codes` into another format per role (Shenzhen-style 4403… numbers,
    prefixes and lengths unlike the product generator's H…/P…/D…/X… codes)."""
    rng = np.random.default_rng([seed, len(role), sum(map(ord, role))])
    order = rng.permutation(len(codes))
    fmt = {"institution": "4403{:08d}", "person": "44{:018d}", "practitioner": "YS4403{:07d}",
           "drug": "TY{:010d}"}[role]
    return {code: fmt.format(int(i) + 1) for code, i in zip(codes, order, strict=True)}


def rename_codes(src: Path, dst: Path, seed: int) -> dict:
    """Rename institution, person, practitioner and drug/item codes into other prefixes and formats, consistently
    across every table and truth.json (diagnosis codes kept). Detectors must not read meaning into code shapes."""
    dst = Path(dst)
    _prepare(dst)
    city = read_city(src, dst.parent / f".duck-{dst.name}")
    try:
        # every code of a role, from every column holding it
        by_role: dict[str, set[str]] = {r: set() for r in set(CODE_ROLES.values())}
        for table, cols in city.columns.items():
            for c in cols:
                role = CODE_ROLES.get(c.lower())
                if role:
                    by_role[role].update(r[0] for r in city.con.execute(
                        f"SELECT DISTINCT {_q(c)} FROM {table} WHERE {_q(c)} IS NOT NULL AND {_q(c)} <> ''").fetchall())
        mapping: dict[str, str] = {}
        for role, codes in sorted(by_role.items()):
            rename = _new_codes(sorted(codes), seed, role)
            pairs = pa.table({"old": pa.array(list(rename), pa.string()),
                              "new": pa.array(list(rename.values()), pa.string())})
            city.con.register("_pairs", pairs)
            city.con.execute(f"CREATE TEMP TABLE _map_{role} AS SELECT * FROM _pairs")
            city.con.unregister("_pairs")
            clash = set(rename) & set(mapping)
            if clash:
                raise ValueError(f"code {sorted(clash)[0]!r} is used for two kinds of entity; cannot rename")
            mapping.update(rename)
        rewritten = set()
        for table, cols in city.columns.items():
            roles = [(c, CODE_ROLES[c.lower()]) for c in cols if c.lower() in CODE_ROLES]
            if not roles:
                continue
            select, joins = [], []
            for i, c in enumerate(cols):
                role = CODE_ROLES.get(c.lower())
                if role:
                    select.append(f"coalesce(m{i}.new, t.{_q(c)}) AS {_q(c)}")
                    joins.append(f"LEFT JOIN _map_{role} m{i} ON m{i}.old = t.{_q(c)}")
                else:
                    select.append(f"t.{_q(c)}")
            _write(city, table, f"SELECT {', '.join(select)} FROM {table} t {' '.join(joins)}", dst)
            rewritten.add(table)
        _copy_unchanged(city, dst, rewritten)
        city.truth = _rename_json(city.truth, mapping)
        changes = {"renamed": {role: len(codes) for role, codes in sorted(by_role.items())}}
        return _finish(city, dst, "renamed", seed, changes, [])
    finally:
        city.close()


def _rename_json(value: Any, mapping: dict[str, str]) -> Any:
    """Every string value (not key) of a JSON structure that is a renamed code, renamed."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, list):
        return [_rename_json(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _rename_json(v, mapping) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------- (c) day times
def _day_sql(col: str) -> str:
    c = _q(col)
    dashed = r"'^(\d{4}-\d{2}-\d{2})[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$'"
    compact = r"'^(\d{8})\d{6}$'"
    return f"regexp_replace(regexp_replace({c}, {dashed}, '\\1 00:00:00'), {compact}, '\\1000000')"


def round_times_to_day(src: Path, dst: Path, seed: int = 0) -> dict:
    """Set every date-time field to midnight of its day (exports that carry dates only). Schemes that need the
    time of day (TIME_OF_DAY_KINDS) are marked unsupported."""
    dst = Path(dst)
    _prepare(dst)
    city = read_city(src, dst.parent / f".duck-{dst.name}")
    try:
        rewritten = set()
        for table, cols in city.columns.items():
            if not any(c.lower() in TIME_COLUMNS for c in cols):
                continue
            select = [f"{_day_sql(c)} AS {_q(c)}" if c.lower() in TIME_COLUMNS else _q(c) for c in cols]
            _write(city, table, f"SELECT {', '.join(select)} FROM {table}", dst)
            rewritten.add(table)
        _copy_unchanged(city, dst, rewritten)
        unsupported = [{"scheme_id": s.get("scheme_id"), "kind": s["kind"], "reason": "needs the time of day"}
                       for s in city.truth.get("schemes", []) if s.get("kind") in TIME_OF_DAY_KINDS]
        changes = {"tables": sorted(rewritten)}
        return _finish(city, dst, "day_times", seed, changes, unsupported)
    finally:
        city.close()


# ---------------------------------------------------------------------------------------------- (d) volume
def _shift_sql(c: str, days: str) -> str:
    """SQL shifting the date-time text `c` (an SQL expression) by `days` days, written as yyyy-MM-dd HH:mm:ss."""
    ts = f"coalesce(try_cast({c} AS TIMESTAMP), try_strptime({c}, '%Y%m%d%H%M%S'))"
    return f"coalesce(strftime({ts} + to_days(CAST({days} AS INTEGER)), '%Y-%m-%d %H:%M:%S'), {c})"


def scale_volume(src: Path, dst: Path, seed: int, factor: float) -> dict:
    """Multiply (`factor` > 1, whole) or thin (`factor` < 1) the background visit volume.

    ×N: every outpatient and pharmacy visit of a person in no planted scheme and no look-alike gets N − 1 copies
    (new mdtrt_id/setl_id `<id>-c<k>`, all its times shifted by a seeded −30…+30 days, kept inside the period;
    stays (med_type 2x, maternity 52) are not copied — ten times the stays would overlap; nor are visits with a key
    drug (hilist key_drug_flag 1) — ten times a person's supply is what resale looks like; a copy landing on a day
    the person is at another institution, or after the person's death_date, is left out). ÷N: a seeded 1/N of the
    visits that are not planted evidence is kept, with their settlements and fee lines. Pharmacy stock movements
    (phar_inv cnt) scale by the same factor so stock still balances sales.
    """
    dst = Path(dst)
    _prepare(dst)
    city = read_city(src, dst.parent / f".duck-{dst.name}")
    con = city.con
    try:
        m_id, m_psn = city.col("mdtrt", "mdtrt_id"), city.col("mdtrt", "psn_no")
        m_type = city.col("mdtrt", "med_type")
        s_id, s_mdtrt = city.col("setl", "setl_id"), city.col("setl", "mdtrt_id")
        f_mdtrt, f_setl = city.col("fee_list", "mdtrt_id"), city.col("fee_list", "setl_id")
        evidence = sorted(city.evidence())
        con.execute("CREATE TEMP TABLE _ev AS SELECT unnest(?::VARCHAR[]) AS id", [evidence])
        before = int(con.execute("SELECT count(*) FROM mdtrt").fetchone()[0])
        if factor >= 1:
            k_max = int(round(factor))
            if k_max != factor:
                raise ValueError(f"factor {factor}: multiply by a whole number")
            special = sorted({p for rec in (*city.truth.get("schemes", []), *city.truth.get("lookalikes", []))
                              for p in rec.get("persons") or []})
            con.execute("CREATE TEMP TABLE _special AS SELECT unnest(?::VARCHAR[]) AS psn", [special])
            begn = city.col("mdtrt", "begntime")
            lo, hi = con.execute(f"SELECT min(try_cast({_q(begn)} AS TIMESTAMP)), max(try_cast({_q(begn)} AS "
                                 "TIMESTAMP)) FROM mdtrt").fetchone()
            # every kind of stay (med_type 2x and maternity stays, 52): ten deliveries in two months are impossible
            codes = ", ".join(f"'{c}'" for c in sorted(INPATIENT_MED_TYPES))
            inpatient = f"coalesce({_q(m_type)} LIKE '2%' OR {_q(m_type)} IN ({codes}), false)" if m_type else "false"
            shift_key = "m." + _q(m_id) + " || ':' || r.k"
            off = f"(floor({_unit_hash(shift_key, seed, 'shift')} * 61) - 30)"
            bts = f"try_cast(m.{_q(begn)} AS TIMESTAMP)"
            con.execute(f"""CREATE TEMP TABLE _copies AS
                SELECT id, k, CASE WHEN b + to_days(CAST(o AS INTEGER)) BETWEEN ? AND ? THEN o ELSE -o END AS days
                FROM (SELECT m.{_q(m_id)} AS id, r.k AS k, {off} AS o, {bts} AS b
                      FROM mdtrt m, range(1, {k_max}) r(k)
                      WHERE m.{_q(m_psn)} NOT IN (SELECT psn FROM _special) AND NOT {inpatient}
                        AND m.{_q(m_id)} NOT IN (SELECT id FROM _ev))""", [lo, hi])
            # a person buys no more of a key (resale-prone) drug than before: ten times the supply is what resale
            # looks like; and nobody visits after their recorded death
            f_code = city.col("fee_list", "hilist_code") or city.col("fee_list", "med_list_codg")
            h_code, h_key = city.col("hilist", "hilist_code"), city.col("hilist", "key_drug_flag")
            if f_code and h_code and h_key:
                con.execute(f"""DELETE FROM _copies WHERE id IN (SELECT f.{_q(f_mdtrt)} FROM fee_list f
                    WHERE f.{_q(f_code)} IN (SELECT {_q(h_code)} FROM hilist WHERE {_q(h_key)} = '1'))""")
            p_no, p_death = city.col("psn_info", "psn_no"), (city.col("psn_info", "death_date")
                                                            or city.col("psn_info", "die_date"))
            if p_death:
                con.execute(f"""DELETE FROM _copies WHERE (id, k) IN (
                    SELECT (c.id, c.k) FROM _copies c JOIN mdtrt m ON m.{_q(m_id)} = c.id
                    JOIN psn_info p ON p.{_q(p_no)} = m.{_q(m_psn)}
                    WHERE try_cast(p.{_q(p_death)} AS DATE) IS NOT NULL AND CAST(try_cast(m.{_q(begn)} AS TIMESTAMP)
                          AS DATE) + CAST(c.days AS INTEGER) > try_cast(p.{_q(p_death)} AS DATE))""")
            drawn = int(con.execute("SELECT count(*) FROM _copies").fetchone()[0])
            # one person cannot be at two institutions on one day more often than the data says: a copy landing on
            # a day the person visits another institution (an original or another copy) is left out
            m_inst = city.col("mdtrt", "fixmedins_code") or city.col("mdtrt", "medins_code")
            day = f"CAST(try_cast(m.{_q(begn)} AS TIMESTAMP) AS DATE)"
            con.execute(f"""CREATE TEMP TABLE _cv AS
                SELECT c.id, c.k, m.{_q(m_psn)} AS psn, m.{_q(m_inst)} AS inst,
                       {day} + CAST(c.days AS INTEGER) AS day
                FROM _copies c JOIN mdtrt m ON m.{_q(m_id)} = c.id""")
            con.execute(f"""CREATE TEMP TABLE _busy AS SELECT psn, day FROM (
                    SELECT m.{_q(m_psn)} AS psn, {day} AS day, m.{_q(m_inst)} AS inst FROM mdtrt m
                    UNION ALL SELECT psn, day, inst FROM _cv)
                GROUP BY psn, day HAVING count(DISTINCT inst) > 1""")
            con.execute("DELETE FROM _copies WHERE (id, k) IN (SELECT (id, k) FROM _cv JOIN _busy USING (psn, day))")
            copies = int(con.execute("SELECT count(*) FROM _copies").fetchone()[0])

            def copied(table: str, id_col: str, renames: dict[str, str]) -> str:
                cols = city.columns[table]
                sel = []
                for c in cols:
                    if c in renames:
                        sel.append(f"CASE WHEN t.{_q(c)} IS NULL THEN NULL ELSE t.{_q(c)} || '-c' || c.k END "
                                   f"AS {_q(c)}")
                    elif c.lower() in TIME_COLUMNS:
                        sel.append(f"{_shift_sql('t.' + _q(c), 'c.days')} AS {_q(c)}")
                    else:
                        sel.append(f"t.{_q(c)}")
                return (f"SELECT * FROM {table} UNION ALL SELECT {', '.join(sel)} FROM {table} t "
                        f"JOIN _copies c ON c.id = t.{_q(id_col)}")

            _write(city, "mdtrt", copied("mdtrt", m_id, {m_id: ""}), dst)
            _write(city, "setl", copied("setl", s_mdtrt, {s_id: "", s_mdtrt: ""}), dst)
            f_ren = {f_mdtrt: ""}
            if f_setl:
                f_ren[f_setl] = ""
            _write(city, "fee_list", copied("fee_list", f_mdtrt, f_ren), dst)
            changes: dict = {"factor": k_max, "visits_before": before, "visit_copies": copies,
                             "copies_left_out_same_day_elsewhere": drawn - copies,
                             "persons_excluded": len(special)}
        else:
            keep = f"({_unit_hash(_q(m_id), seed, 'keep')} < {float(factor)!r})"
            ev_setl = (f" OR {_q(m_id)} IN (SELECT {_q(s_mdtrt)} FROM setl WHERE {_q(s_id)} IN (SELECT id FROM _ev))")
            con.execute(f"CREATE TEMP TABLE _keep AS SELECT {_q(m_id)} AS id FROM mdtrt WHERE {keep} "
                        f"OR {_q(m_id)} IN (SELECT id FROM _ev){ev_setl}")
            _write(city, "mdtrt", f"SELECT * FROM mdtrt WHERE {_q(m_id)} IN (SELECT id FROM _keep)", dst)
            _write(city, "setl", f"SELECT * FROM setl WHERE {_q(s_mdtrt)} IN (SELECT id FROM _keep)", dst)
            _write(city, "fee_list", f"SELECT * FROM fee_list WHERE {_q(f_mdtrt)} IN (SELECT id FROM _keep)", dst)
            kept = int(con.execute("SELECT count(*) FROM _keep").fetchone()[0])
            changes = {"factor": factor, "visits_before": before, "visits_kept": kept}
        rewritten = {"mdtrt", "setl", "fee_list"}
        cnt = city.col("phar_inv", "cnt") if "phar_inv" in city.files else None
        if cnt:
            scaled = (f"CASE WHEN try_cast({_q(cnt)} AS DOUBLE) IS NULL THEN {_q(cnt)} ELSE "
                      f"CAST(round(try_cast({_q(cnt)} AS DOUBLE) * {float(factor)!r}, 2) AS VARCHAR) END")
            sel = [f"{scaled} AS {_q(c)}" if c == cnt else _q(c) for c in city.columns["phar_inv"]]
            _write(city, "phar_inv", f"SELECT {', '.join(sel)} FROM phar_inv", dst)
            rewritten.add("phar_inv")
        _copy_unchanged(city, dst, rewritten)
        name = "volume_x10" if factor == 10 else "volume_div10" if factor == 0.1 else f"volume_{factor:g}"
        return _finish(city, dst, name, seed, changes, [])
    finally:
        city.close()


# ---------------------------------------------------------------------------------------------- dispatch
PERTURBATIONS: dict[str, Callable[[Path, Path, int], dict]] = {
    "drop_fee_lines": drop_fee_lines,
    "renamed": rename_codes,
    "day_times": round_times_to_day,
    "volume_x10": lambda src, dst, seed: scale_volume(src, dst, seed, 10),
    "volume_div10": lambda src, dst, seed: scale_volume(src, dst, seed, 0.1),
}


def perturb(src: Path, dst: Path, name: str, seed: int = 1) -> dict:
    """Apply the perturbation `name` (a key of PERTURBATIONS) to the city in `src`, writing `dst`; returns the
    `perturbation` entry written into dst/truth.json."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    try:
        return PERTURBATIONS[name](Path(src), Path(dst), seed)
    finally:
        shutil.rmtree(Path(dst).parent / f".duck-{Path(dst).name}", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--kind", required=True, choices=sorted(PERTURBATIONS))
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    entry = perturb(opts.src, opts.dst, opts.kind, opts.seed)
    entry = {**entry, "changes": {k: v for k, v in entry["changes"].items() if k != "institutions_dropped"}}
    print(json.dumps(entry, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
