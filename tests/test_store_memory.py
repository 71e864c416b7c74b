"""The claims store's DuckDB memory cap (from the machine's RAM unless configured) and its spill directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudnet.claims import store as store_mod
from fraudnet.claims.store import ClaimsStore, default_memory_limit, temp_directory
from fraudnet.errors import StoreError

GIB = 1024**3


def test_default_memory_limit_is_a_share_of_ram_within_bounds() -> None:
    assert default_memory_limit(24 * GIB) == "6144MiB"  # this project's machine: 6 GiB of 24
    assert default_memory_limit(2 * GIB) == "1024MiB"  # floor
    assert default_memory_limit(256 * GIB) == "10240MiB"  # ceiling


def test_store_applies_limit_and_spill_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(store_mod.MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.delenv(store_mod.TEMP_DIR_ENV, raising=False)
    with ClaimsStore.open(tmp_path / "ws") as store:
        spill = store.con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert Path(spill) == temp_directory(tmp_path / "ws") == tmp_path / "ws" / "duckdb-spill"
    assert (tmp_path / "ws" / "duckdb-spill").stat().st_mode & 0o077 == 0
    expected_gib = int(default_memory_limit()[:-3]) / 1024
    assert limit.endswith("GiB") and abs(float(limit[:-4]) - expected_gib) < 0.1


def test_work_beyond_the_limit_spills_instead_of_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sort of ~320 MB of rows under a 100 MB cap completes, spilling into the configured directory."""
    monkeypatch.setenv(store_mod.MEMORY_LIMIT_ENV, "100MB")
    monkeypatch.setenv(store_mod.TEMP_DIR_ENV, str(tmp_path / "spill"))
    with ClaimsStore.open(tmp_path / "ws") as store:
        con = store.con
        con.execute("SET threads = 1")
        con.execute("CREATE TEMP TABLE big AS SELECT range AS i, hash(range) AS h, md5(range::VARCHAR) AS s "
                    "FROM range(4000000)")
        con.execute("CREATE TEMP TABLE sorted AS SELECT * FROM big ORDER BY s")
        n, first = con.execute("SELECT count(*), min(s) FROM sorted").fetchone()
        used = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    assert n == 4_000_000 and first is not None
    assert Path(used) == tmp_path / "spill"
    assert (tmp_path / "spill").is_dir()


def test_bad_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store_mod.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(StoreError, match="not a size"):
        ClaimsStore.open(tmp_path / "ws")
