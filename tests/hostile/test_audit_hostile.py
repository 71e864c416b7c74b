"""Audit tampering: truncation, rows edited with a recomputed plain chain, forged or removed checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from fraudnet.claims import audit


def _store(ws: Path) -> duckdb.DuckDBPyConnection:
    ws.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(ws / "claims.duckdb"))
    audit.ensure_tables(con)
    return con


def _fill(con: duckdb.DuckDBPyConnection, n: int = 100) -> None:
    writer = audit.AuditLog(con.cursor, window_s=0.0, max_batch=7)
    for i in range(n):
        writer.append(f"user{i % 3}", "entity.profile", role="viewer", entities=[f"Person:P{i}"],
                      method="GET", path=f"/api/entities/Person:P{i}", detail={"i": i})
    writer.flush()
    writer.close()


def _rechain_plain(con: duckdb.DuckDBPyConnection, start: int) -> None:
    """What a tamperer with write access to the store can do: recompute a SHA-256 chain from `start` on."""
    prev = con.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", [start - 1]).fetchone()
    prev = prev[0] if prev else audit._GENESIS
    rows = con.execute('SELECT seq, "at", "user", role, action, method, path, status_code, entities, detail '
                       "FROM audit_log WHERE seq >= ? ORDER BY seq", [start]).fetchall()
    for r in rows:
        body = audit._canonical(r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9])
        entry = hashlib.sha256((prev + body).encode()).hexdigest()
        con.execute("UPDATE audit_log SET prev_hash = ?, entry_hash = ? WHERE seq = ?", [prev, entry, r[0]])
        prev = entry


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, duckdb.DuckDBPyConnection]:
    ws = tmp_path / "ws"
    con = _store(ws)
    _fill(con)
    return ws, con


def test_intact_log_verifies_with_key_and_checkpoints(filled) -> None:
    ws, con = filled
    found = audit.verify_audit(con)
    assert found.ok and found.first_bad_seq is None and found.reason is None
    assert found.entries == 100 and found.keyed_from == 1 and found.last_checkpoint_seq == 100
    assert found.checkpoints >= 2  # genesis + at least the flush
    for name in ("audit.key", "audit.checkpoints"):
        assert stat.S_IMODE(os.stat(ws / name).st_mode) == 0o600
    assert audit.verify_audit_chain(con) == (True, None)


def test_deleting_the_last_20_rows_is_detected_as_truncation(filled) -> None:
    _, con = filled
    con.execute("DELETE FROM audit_log WHERE seq > 80")
    found = audit.verify_audit(con)
    assert not found.ok and found.first_bad_seq == 81
    assert "truncated" in found.reason and "81..100" in found.reason


def test_edited_row_with_recomputed_plain_chain_is_named(filled) -> None:
    _, con = filled
    con.execute("UPDATE audit_log SET \"user\" = 'nobody', entities = '[\"Person:P0\"]' WHERE seq = 37")
    _rechain_plain(con, 37)
    found = audit.verify_audit(con)
    assert not found.ok and found.first_bad_seq == 37 and "entry 37 was altered" in found.reason


def test_edited_row_and_truncated_tail_after_restart_is_found(filled) -> None:
    """Delete the tail, then let the server write on: the new entries chain validly, but the checkpointed entry 100
    is not the one there now."""
    _, con = filled
    con.execute("DELETE FROM audit_log WHERE seq > 95")
    _fill(con, 10)  # a new writer reads the shortened tail and goes on from 95
    found = audit.verify_audit(con)
    assert not found.ok and found.first_bad_seq is not None and found.first_bad_seq <= 96
    assert "rewritten" in found.reason


def test_forged_or_removed_checkpoints_fail(filled) -> None:
    ws, con = filled
    path = ws / "audit.checkpoints"
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    last["count"] = 80  # pretend fewer entries were ever written
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    found = audit.verify_audit(con)
    assert not found.ok and "signature" in found.reason
    path.unlink()
    found = audit.verify_audit(con)
    assert not found.ok and "genesis" in found.reason
    (ws / "audit.key").unlink()
    path.write_text("\n".join(lines) + "\n")
    assert "key" in audit.verify_audit(con).reason


def test_old_unkeyed_chain_is_anchored_at_migration(tmp_path: Path) -> None:
    """A workspace written before the key: its entries verify the old way, new ones are keyed; rewriting the old
    part (with a recomputed plain chain up to the keyed start) is caught by the genesis checkpoint."""
    ws = tmp_path / "ws"
    con = _store(ws)
    prev = audit._GENESIS
    for seq in range(1, 4):
        at = datetime(2026, 11, 1, 8, seq)
        body = audit._canonical(at, "u", "viewer", "entity.profile", "GET", "/p", 200, [f"Person:P{seq}"], "{}")
        entry = hashlib.sha256((prev + body).encode()).hexdigest()
        con.execute(f"INSERT INTO audit_log ({audit._ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, at, "u", "viewer", "entity.profile", "GET", "/p", 200, f'["Person:P{seq}"]', "{}", prev,
                     entry])
        prev = entry
    legacy = audit.verify_audit(con)
    assert legacy.ok and legacy.keyed_from is None  # not migrated yet: still checkable, but unkeyed
    audit.append_audit(con, "cli", "token.create")
    found = audit.verify_audit(con)
    assert found.ok and found.keyed_from == 4 and found.entries == 4
    con.execute("UPDATE audit_log SET \"user\" = 'x' WHERE seq = 2")
    _rechain_plain(con, 2)
    found = audit.verify_audit(con)
    assert not found.ok and found.first_bad_seq == 1 and "1..3 were rewritten" in found.reason
