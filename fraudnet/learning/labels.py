"""Labels: past case outcomes imported from CSV/XLSX and investigators' lead decisions, kept in the claims store.

An imported row is (entity_type, entity_id, label, decided_at, source, note); Chinese headers and values are
accepted (实体类型, 编号, 结论 违规/正常, 日期, 来源, 备注). A bad row goes to `label_quarantine` with its row number,
field, value and reason; the rest load. Importing the same file twice changes nothing (its hash is remembered),
and a row that repeats a stored label is counted as unchanged. Decisions on leads (confirmed / referred → fraud,
dismissed → clean) are labels of the lead's key entities (persons for person rules, institutions otherwise).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fraudnet.claims.schema import LABEL_DDL
from fraudnet.errors import IngestError, InvalidRequestError

__all__ = [
    "ENTITY_TYPES",
    "LABEL_COLUMNS",
    "ImportReport",
    "ensure_label_tables",
    "import_labels",
    "read_label_rows",
    "list_labels",
    "decision_labels",
    "all_labels",
    "normalise_entity_type",
]

ENTITY_TYPES: tuple[str, ...] = ("Person", "Practitioner", "Institution")
LABEL_COLUMNS = ("entity_type", "entity_id", "label", "decided_at", "source", "note", "origin", "decided_by")

# Header (lower-cased, stripped) → canonical column.
_HEADERS: dict[str, str] = {
    "entity_type": "entity_type", "type": "entity_type", "实体类型": "entity_type", "类型": "entity_type",
    "entity_id": "entity_id", "id": "entity_id", "编号": "entity_id", "实体编号": "entity_id", "代码": "entity_id",
    "label": "label", "结论": "label", "outcome": "label",
    "decided_at": "decided_at", "date": "decided_at", "日期": "decided_at", "结论日期": "decided_at",
    "source": "source", "来源": "source",
    "note": "note", "备注": "note", "说明": "note",
}
_REQUIRED = ("entity_type", "entity_id", "label")
_TYPES: dict[str, str] = {
    "person": "Person", "persons": "Person", "psn": "Person", "人员": "Person", "参保人": "Person", "个人": "Person",
    "practitioner": "Practitioner", "practitioners": "Practitioner", "医师": "Practitioner",
    "医生": "Practitioner", "医务人员": "Practitioner", "医保医师": "Practitioner",
    "institution": "Institution", "institutions": "Institution", "pharmacy": "Institution", "机构": "Institution",
    "医疗机构": "Institution", "定点机构": "Institution", "医院": "Institution", "药店": "Institution",
    "定点医药机构": "Institution",
}
_LABELS: dict[str, str] = {
    "fraud": "fraud", "违规": "fraud", "欺诈": "fraud", "confirmed": "fraud", "referred": "fraud", "确认": "fraud",
    "移送": "fraud", "clean": "clean", "正常": "clean", "合规": "clean", "dismissed": "clean", "排除": "clean",
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
MAX_ID = 64
MAX_TEXT = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class ImportReport:
    """What one `import_labels` did: rows read, loaded (new), updated (label changed), unchanged, quarantined."""

    file_name: str
    import_id: int | None
    already_imported: bool = False
    rows_read: int = 0
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    not_in_store: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_label_tables(con: Any) -> None:
    """Create the label tables if missing (the claims store's schema has them; in-memory test stores may not)."""
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_name IN "
                                      "('labels', 'label_imports', 'label_quarantine')").fetchall()}
    if len(have) == 3:  # also on a read-only connection, which cannot run CREATE
        return
    for ddl in LABEL_DDL:
        con.execute(ddl)


def normalise_entity_type(value: str | None) -> str:
    """Person, Practitioner or Institution for an English or Chinese type name; InvalidRequestError otherwise."""
    t = _TYPES.get(str(value or "").strip().lower())
    if t is None:
        raise InvalidRequestError(f"entity_type {value!r} is not one of {', '.join(ENTITY_TYPES)} "
                                  "(人员/医师/机构)", field="entity_type")
    return t


def _decode(data: bytes, path: Path) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise IngestError(f"{path}: neither UTF-8 nor GB18030 text / 文件编码无法识别")


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if text.strip() else None


def read_label_rows(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """The canonical columns found and the data rows (spreadsheet row number, column → text) of a CSV/XLSX file.

    Raises IngestError when the file is empty, unreadable or lacks a required column (named in the message).
    """
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: no such file / 文件不存在")
    raw = p.read_bytes()
    if not raw.strip():
        raise IngestError(f"{p}: the file is empty / 文件为空")
    rows: list[list[Any]]
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            import openpyxl

            book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
            rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
            book.close()
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise IngestError(f"{p}: not a readable XLSX workbook ({exc}) / 无法读取 XLSX") from exc
    elif p.suffix.lower() in (".csv", ".txt", ".tsv"):
        text = _decode(raw, p)
        delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    else:
        raise IngestError(f"{p}: only .csv and .xlsx label files are read (got {p.suffix or 'no extension'})")
    header_at = next((i for i, r in enumerate(rows) if any(_cell(c) for c in r)), None)
    if header_at is None:
        raise IngestError(f"{p}: the file has no header row / 文件没有表头")
    header = [(_cell(c) or "").strip().lstrip("\ufeff") for c in rows[header_at]]
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        canon = _HEADERS.get(name.lower())
        if canon and canon not in columns.values():
            columns[i] = canon
    missing = [c for c in _REQUIRED if c not in columns.values()]
    if missing:
        raise IngestError(f"{p}: missing column {missing[0]!r} (header: {', '.join(header) or '-'}); required: "
                          "entity_type/实体类型, entity_id/编号, label/结论")
    out: list[tuple[int, dict[str, str | None]]] = []
    for n, r in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(_cell(c) for c in r):
            continue
        values = {canon: (_cell(r[i]) if i < len(r) else None) for i, canon in columns.items()}
        if len(r) > len(header) and any(_cell(c) for c in r[len(header):]):
            values["_ragged"] = f"{len(r)} fields, header has {len(header)}"
        out.append((n, values))
    return list(columns.values()), out


def _parse_date(text: str) -> date:
    t = text.strip()
    m = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", t)
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    if re.fullmatch(r"\d{8}", t):
        return date(int(t[:4]), int(t[4:6]), int(t[6:]))
    t = t.replace("/", "-").replace(".", "-")
    try:
        return datetime.fromisoformat(t).date()
    except ValueError:
        return date.fromisoformat(t)


def _validate(values: dict[str, str | None], today: date) -> tuple[dict[str, Any] | None, tuple[str, str, str]]:
    """(clean row, ("", "", "")) or (None, (field, value, reason))."""
    if "_ragged" in values:
        return None, ("row", values["_ragged"] or "", "more fields than the header / 字段数多于表头")
    etype = (values.get("entity_type") or "").strip()
    t = _TYPES.get(etype.lower())
    if t is None:
        return None, ("entity_type", etype, "not one of Person, Practitioner, Institution (人员/医师/机构)")
    eid = (values.get("entity_id") or "").strip()
    if not eid:
        return None, ("entity_id", "", "empty id / 编号为空")
    if eid.startswith(_FORMULA):
        return None, ("entity_id", eid[:100], "looks like a spreadsheet formula / 疑似表格公式")
    if len(eid) > MAX_ID or _CONTROL.search(eid):
        return None, ("entity_id", eid[:100], f"longer than {MAX_ID} characters or holds control characters")
    label = _LABELS.get((values.get("label") or "").strip().lower())
    if label is None:
        return None, ("label", (values.get("label") or "")[:100], "not fraud/clean (违规/正常)")
    decided: date | None = None
    text = (values.get("decided_at") or "").strip()
    if text:
        try:
            decided = _parse_date(text)
        except ValueError:
            return None, ("decided_at", text[:100], "not a date (yyyy-mm-dd) / 日期格式错误")
        if decided > today or decided.year < 1990:
            return None, ("decided_at", text[:100], "outside 1990 … today / 日期超出范围")
    out: dict[str, Any] = {"entity_type": t, "entity_id": eid, "label": label, "decided_at": decided}
    for name in ("source", "note"):
        v = (values.get(name) or "").strip() or None
        if v is not None and (len(v) > MAX_TEXT or v.startswith(_FORMULA)):
            return None, (name, v[:100], f"longer than {MAX_TEXT} characters or looks like a formula")
        out[name] = v
    return out, ("", "", "")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _known_ids(con: Any) -> dict[str, set[str]] | None:
    try:
        return {
            "Person": {r[0] for r in con.execute("SELECT psn_no FROM psn_info").fetchall()},
            "Practitioner": {r[0] for r in con.execute("SELECT DISTINCT atddr_no FROM visit_fact").fetchall()},
            "Institution": {r[0] for r in con.execute("SELECT fixmedins_code FROM medins_info").fetchall()},
        }
    except Exception:  # a store without claims data: nothing to check against
        return None


def import_labels(con: Any, path: str | Path, user: str = "cli") -> ImportReport:
    """Load a CSV/XLSX of case outcomes into `labels`; bad rows to `label_quarantine` (row, field, value, reason).

    Idempotent: a file already imported (same content hash) changes nothing; a row equal to the stored label is
    unchanged; a different label for the same entity replaces it (the newer case outcome wins). Two rows of one
    file that disagree on an entity: the later one is quarantined naming the earlier row.
    """
    ensure_label_tables(con)
    p = Path(path)
    _, rows = read_label_rows(p)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    prior = con.execute("SELECT import_id FROM label_imports WHERE file_hash = ? AND status = 'ok'",
                        [digest]).fetchone()
    if prior is not None:
        return ImportReport(file_name=p.name, import_id=int(prior[0]), already_imported=True, rows_read=len(rows))
    import_id = int(con.execute("SELECT coalesce(max(import_id), 0) + 1 FROM label_imports").fetchone()[0])
    report = ImportReport(file_name=p.name, import_id=import_id, rows_read=len(rows))
    today = _now().date()
    good: dict[tuple[str, str], dict[str, Any]] = {}
    bad: list[tuple[int, str, str, str]] = []
    for n, values in rows:
        row, (fld, val, reason) = _validate(values, today)
        if row is None:
            bad.append((n, fld, val, reason))
            continue
        key = (row["entity_type"], row["entity_id"])
        if key in good:
            first = good[key]
            if first["label"] != row["label"]:
                first_n = first["row_number"]
                bad.append((n, "label", row["label"], f"contradicts row {first_n} ({first['label']}) for the same "
                                                      f"entity / 与第{first_n}行矛盾"))
            else:
                report.unchanged += 1  # an exact repeat inside the file
            continue
        row["row_number"] = n
        good[key] = row
    stored = {(t, i): (lab, d) for t, i, lab, d in con.execute(
        "SELECT entity_type, entity_id, label, decided_at FROM labels").fetchall()}
    known = _known_ids(con)
    now = _now()
    new_rows = []
    for key, row in good.items():
        before = stored.get(key)
        if before is not None and before == (row["label"], row["decided_at"]):
            report.unchanged += 1
            continue
        if before is None:
            report.loaded += 1
        else:
            report.updated += 1
        if known is not None and row["entity_id"] not in known[row["entity_type"]]:
            report.not_in_store += 1
        new_rows.append({**row, "import_id": import_id, "file_name": p.name, "imported_by": user,
                         "imported_at": now})
    report.quarantined = len(bad)
    report.problems = [{"row": n, "field": f, "value": v, "reason": r} for n, f, v, r in bad[:50]]
    con.execute("BEGIN TRANSACTION")
    try:
        if new_rows:
            frame = pd.DataFrame(new_rows, columns=["entity_type", "entity_id", "label", "decided_at", "source",
                                                    "note", "import_id", "file_name", "row_number", "imported_by",
                                                    "imported_at"])
            frame["decided_at"] = pd.to_datetime(frame["decided_at"]).dt.date
            con.register("_fn_labels", frame)
            try:
                con.execute("INSERT OR REPLACE INTO labels SELECT * FROM _fn_labels")
            finally:
                con.unregister("_fn_labels")
        if bad:
            con.executemany("INSERT INTO label_quarantine VALUES (?, ?, ?, ?, ?, ?)",
                            [(import_id, p.name, n, f, v, r) for n, f, v, r in bad])
        con.execute("INSERT INTO label_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok')",
                    [import_id, p.name, digest, user, now, len(rows), report.loaded, report.updated,
                     report.unchanged, report.quarantined])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return report


def decision_labels(con: Any) -> pd.DataFrame:
    """Labels from lead decisions: confirmed / referred leads make their key entities fraud, dismissed ones clean.

    Key entities follow `fraudnet.detectors.evaluate.key_entities` (persons for person rules, institutions
    otherwise). `decided_at` and `decided_by` come from the lead's last status change.
    """
    from fraudnet.detectors.evaluate import PERSON_KINDS

    try:
        rows = con.execute(
            """SELECT l.lead_id, l.kind, l.status, l.persons, l.institutions, h."at", h."user"
               FROM leads l LEFT JOIN (
                   SELECT lead_id, "at", "user", row_number() OVER (PARTITION BY lead_id ORDER BY "at" DESC) AS rn
                   FROM lead_history WHERE action IN ('status', 'inherited')) h
               ON h.lead_id = l.lead_id AND h.rn = 1
               WHERE l.status IN ('confirmed', 'referred', 'dismissed')""").fetchall()
    except Exception:  # no lead tables yet
        rows = []
    out = []
    for lead_id, kind, status, persons, institutions, at, user in rows:
        etype, members = ("Person", persons) if kind in PERSON_KINDS else ("Institution", institutions)
        label = "clean" if status == "dismissed" else "fraud"
        for m in members or []:
            out.append((etype, m, label, at.date().isoformat() if at else None, f"lead:{lead_id}", f"{kind} {status}",
                        "decision", user))
    return pd.DataFrame(out, columns=list(LABEL_COLUMNS))


def list_labels(con: Any, entity_type: str | None = None) -> pd.DataFrame:
    """Imported labels (origin `import`) with who imported them: LABEL_COLUMNS, newest decision first."""
    try:
        ensure_label_tables(con)
    except Exception:  # a read-only store made before labels existed: none imported
        return pd.DataFrame(columns=list(LABEL_COLUMNS))
    where, params = "", []
    if entity_type:
        where, params = "WHERE entity_type = ?", [normalise_entity_type(entity_type)]
    frame = con.execute(
        f"""SELECT entity_type, entity_id, label, strftime(decided_at, '%Y-%m-%d') AS decided_at, source, note,
                   'import' AS origin,
                   imported_by AS decided_by FROM labels {where}
            ORDER BY labels.decided_at DESC NULLS LAST, entity_type, entity_id""", params).df()
    return frame[list(LABEL_COLUMNS)]


def all_labels(con: Any, entity_type: str | None = None) -> pd.DataFrame:
    """One label per entity from imports and lead decisions: the latest decision wins (undated counts as
    oldest); on the same day fraud beats clean."""
    frames = [list_labels(con, entity_type), decision_labels(con)]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=list(LABEL_COLUMNS))
    if entity_type:
        frame = frame[frame["entity_type"] == normalise_entity_type(entity_type)]
    if frame.empty:
        return frame.reset_index(drop=True)
    frame = frame.assign(_d=pd.to_datetime(frame["decided_at"]).fillna(pd.Timestamp("1900-01-01")),
                         _f=(frame["label"] == "fraud").astype(int))
    frame = frame.sort_values(["_d", "_f"], ascending=False, kind="stable")
    frame = frame.drop_duplicates(["entity_type", "entity_id"]).drop(columns=["_d", "_f"])
    return frame.reset_index(drop=True)
