"""Hostile Spark options: a --master that is no master URL, a --lake that is no fraudnet lake (missing, foreign
Parquet, files that are not Parquet). Each is refused with a message naming it, before any JVM starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main
from fraudnet.errors import InvalidRequestError

pytest.importorskip("pyspark")

from fraudnet.engines.lake import check_lake  # noqa: E402
from fraudnet.engines.spark import check_master  # noqa: E402


@pytest.mark.parametrize("master", ["nonsense", "local[0]", "spark://", "yarn; rm -rf /", "local[2] --conf a=b",
                                    "", "http://host:7077", "spark://host:port", "local[-1]"])
def test_a_master_that_is_no_url_is_refused(master: str) -> None:
    with pytest.raises(InvalidRequestError, match="not a master URL") as err:
        check_master(master)
    assert repr(master) in str(err.value) and err.value.field == "master"


@pytest.mark.parametrize("master", ["local", "local[*]", "local[4]", "local[2,3]", "spark://h1:7077,h2.example:7077",
                                    "yarn", "k8s://https://api.example:6443"])
def test_master_urls_pass(master: str) -> None:
    assert check_master(master) == master


@pytest.fixture()
def workspace(small_claims_workspace: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(small_claims_workspace, ws)
    return ws


def _detect(ws: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["-w", str(ws), "detect", "--engine", "spark", "--only", "rule:after_death",
                                    "--no-sync", *args])
    return res.exit_code, res.output


def _leads(ws: Path) -> int:
    """Leads saved in the workspace (none before a first detection: no leads table yet)."""
    with ClaimsStore.open(ws, read_only=True) as store:
        tables = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return store.con.execute("SELECT count(*) FROM leads").fetchall()[0][0] if "leads" in tables else 0


def test_detect_refuses_a_master_that_is_no_url(workspace: Path) -> None:
    before = _leads(workspace)
    code, out = _detect(workspace, "--master", "spark://evil host:7077")
    assert code == 1 and "not a master URL" in out and "'spark://evil host:7077'" in out
    assert "Traceback" not in out and _leads(workspace) == before


def _foreign(lake: Path) -> None:
    con = duckdb.connect()
    for table in ("mdtrt", "visit_fact"):
        (lake / table).mkdir(parents=True)
        con.execute(f"COPY (SELECT 1 AS a, 'x' AS b) TO '{lake / table / 'part-0.parquet'}' (FORMAT parquet)")
    con.close()


def _not_parquet(lake: Path) -> None:
    for table in ("mdtrt", "visit_fact"):
        (lake / table).mkdir(parents=True)
        (lake / table / "part-0.parquet").write_text("mdtrt_id,psn_no\nM1,P1\n")


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such folder"),
    ("empty", "no mdtrt, visit_fact folder"),
    ("foreign", "lacks the columns"),
    ("not_parquet", "not readable as Parquet"),
    ("a_file", "no such folder"),
])
def test_detect_refuses_a_lake_that_is_no_fraudnet_lake(workspace: Path, tmp_path: Path, case: str,
                                                       expected: str) -> None:
    lake = tmp_path / "lake"
    if case == "empty":
        lake.mkdir()
    elif case == "foreign":
        _foreign(lake)
    elif case == "not_parquet":
        _not_parquet(lake)
    elif case == "a_file":
        lake.write_text("not a folder")
    before = _leads(workspace)
    with ClaimsStore.open(workspace, read_only=True) as store, pytest.raises(InvalidRequestError, match=expected):
        check_lake(lake, store.con)
    code, out = _detect(workspace, "--lake", str(lake))
    assert code != 0 and "Traceback" not in out
    if case != "a_file":  # click refuses a file where a folder is expected, with its own message
        assert code == 1 and expected in out.replace("\n", " ") and str(lake) in out.replace("\n", "")
    assert _leads(workspace) == before
