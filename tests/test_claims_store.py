"""ClaimsStore: schema, types, privacy columns, the workspace key, visit_fact figures, privacy helpers."""

from __future__ import annotations

import stat
from datetime import datetime
from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.errors import IngestError, StoreError
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.privacy import (
    address_key,
    hash_identifier,
    load_or_create_key,
    mask_certno,
    mask_name,
    mask_phone,
    normalize_address,
)
from tests.fixtures.claims import write_minimal_city


def _types(store: ClaimsStore, table: str) -> dict[str, str]:
    df = store.sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table])
    return dict(zip(df["column_name"], df["data_type"], strict=True))


def test_open_creates_folder_schema_and_empty_views(tmp_path: Path) -> None:
    ws = tmp_path / "ws" / "nested"
    with ClaimsStore.open(ws) as store:
        assert store.path == ws / "claims.duckdb" and store.path.exists()
        assert store.table_counts() == dict.fromkeys(
            ("medins_info", "prac_info", "psn_info", "hilist", "mdtrt", "setl", "fee_list", "phar_inv"), 0)
        assert store.data_period() == (None, None)
        assert store.sql("SELECT count(*) AS n FROM visit_fact")["n"].iloc[0] == 0
        assert store.sql("SELECT count(*) AS n FROM quarantine")["n"].iloc[0] == 0
    # Re-opening an existing store keeps it (schema creation is idempotent).
    with ClaimsStore.open(ws) as store:
        assert store.table_counts()["mdtrt"] == 0


def test_read_only_open_of_missing_store_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no claims store at .*claims.duckdb"):
        ClaimsStore.open(tmp_path / "nothing", read_only=True)


def test_column_types_follow_the_contract(tmp_path: Path) -> None:
    with ClaimsStore.open(tmp_path) as store:
        mdtrt = _types(store, "mdtrt")
        assert mdtrt["begntime"] == "TIMESTAMP" and mdtrt["med_type"] == "VARCHAR"
        assert mdtrt["_batch_id"] == "BIGINT" and mdtrt["_source_row"] == "BIGINT" and mdtrt["_extra"] == "JSON"
        assert _types(store, "setl")["medfee_sumamt"] == "DECIMAL(18,2)"
        assert _types(store, "fee_list")["cnt"] == "DOUBLE"
        assert _types(store, "medins_info")["aprv_bed_cnt"] == "BIGINT"
        assert _types(store, "medins_info")["lat"] == "DOUBLE"
        psn = _types(store, "psn_info")
        assert psn["brdy"] == "DATE"
        assert "certno" not in psn and "mob" not in psn
        assert {"certno_hash", "certno_masked", "mob_hash", "mob_masked", "addr_key", "live_addr"} <= set(psn)
        pk = store.sql("SELECT table_name, constraint_type FROM information_schema.table_constraints "
                       "WHERE constraint_type = 'PRIMARY KEY'")
        assert {"psn_info", "medins_info", "mdtrt", "setl"} <= set(pk["table_name"])


def test_secret_key_is_private_created_once_and_stable(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    path = tmp_path / "secret.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key
    other = load_or_create_key(tmp_path / "other")
    assert other != key
    assert hash_identifier("310101196005011234", key) != hash_identifier("310101196005011234", other)


def test_masking_and_hashing_helpers() -> None:
    assert mask_certno("310101199001011234") == "3101**********1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_name("张小三") == "张*三"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_certno(None) is None and mask_phone("") is None
    key = b"k" * 32
    assert hash_identifier(" 31010119900101123x ", key) == hash_identifier("31010119900101123X", key)
    assert len(hash_identifier("a", key) or "") == 64 and hash_identifier("  ", key) is None


def test_address_normalisation_matches_written_variants() -> None:
    a = normalize_address("上海市浦东新区张杨路123号3号楼2单元501室")
    assert a == normalize_address("上海市 浦东新区 张杨路１２３號３#楼２单元５０１")
    assert a == normalize_address("上海市浦东新区，张杨路123号 3幢 2单元 501")
    assert a != normalize_address("上海市浦东新区张杨路123号3号楼2单元502室")
    assert address_key("上海市浦东新区张杨路123号3号楼2单元501室", b"k" * 32) == \
        address_key("上海市浦东新区张杨路１２３号３栋２单元５０１", b"k" * 32)


def test_visit_fact_nets_refunds_and_derives_flags(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    with ClaimsStore.open(tmp_path / "ws") as store:
        ingest_folder(src, store)
        vf = store.sql("SELECT * FROM visit_fact ORDER BY mdtrt_id").set_index("mdtrt_id")
        assert list(vf.index) == ["MD001", "MD002", "MD003", "MD004"]
        assert vf.loc["MD001", "medfee_sumamt"] == 8000.0 and vf.loc["MD001", "fund_pay_sumamt"] == 6000.0
        assert bool(vf.loc["MD001", "is_inpatient"]) and vf.loc["MD001", "los_days"] == 5
        assert not bool(vf.loc["MD001", "refunded"]) and vf.loc["MD001", "setl_count"] == 1
        # MD002: paid 120.50 then fully refunded.
        assert vf.loc["MD002", "medfee_sumamt"] == 0.0 and vf.loc["MD002", "setl_count"] == 2
        assert bool(vf.loc["MD002", "refunded"]) and vf.loc["MD002", "acct_pay"] == 0.0
        assert bool(vf.loc["MD003", "is_pharmacy"]) and vf.loc["MD003", "fixmedins_type"] == "2"
        assert not bool(vf.loc["MD004", "is_pharmacy"]) and vf.loc["MD004", "los_days"] == 0
        assert store.data_period() == (datetime(2025, 3, 1, 8, 0), datetime(2025, 3, 4, 14, 0))
        assert store.sql("SELECT count(*) AS n FROM mdtrt WHERE psn_no = ?", ["PSN0000000000000000001"])["n"][0] == 2
        store.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        assert store.sql("SELECT x FROM scratch")["x"].tolist() == [1]
    with ClaimsStore.open(tmp_path / "ws", read_only=True) as ro:
        assert ro.table_counts()["setl"] == 5
        with pytest.raises(StoreError):
            ro.execute("DELETE FROM setl")


def test_sql_forms_of_privacy_functions_equal_the_python_forms() -> None:
    import duckdb

    from fraudnet.privacy import (
        normalize_phone,
        sql_address_key,
        sql_hash_identifier,
        sql_mask_certno,
        sql_mask_phone,
        sql_normalize_address,
        sql_normalize_phone,
    )

    key = bytes(range(32))
    samples = ["310101199001011234", " 31010119900101123x ", "123", "", "13812345678", "+86 138-1234-5678",
               "００８６１３８１２３４５６７８", "(021)6234 5678", "12", "上海市浦东新区张杨路123号3号楼2单元501室",
               "上海市 浦东新区 張楊路１２３號３#樓２單元５０１", "北京市朝阳区x路5号3幢2单501房", "ＡＢＣ路　１号",
               "一二三路_甲-1号 #3", "it's [x]", None]
    exprs = [sql_hash_identifier("$v", key), sql_mask_certno("$v"), sql_normalize_phone("$v"), sql_mask_phone("$v"),
             sql_normalize_address("$v"), sql_address_key("$v", key)]
    con = duckdb.connect()
    try:
        for s in samples:
            expected = [hash_identifier(s, key), mask_certno(s), normalize_phone(s), mask_phone(s),
                        normalize_address(s), address_key(s, key)]
            got = list(con.execute("SELECT " + ", ".join(exprs), {"v": s}).fetchall()[0])
            assert got == expected, s
    finally:
        con.close()


def test_read_only_open_beside_a_read_write_one_in_the_same_process(tmp_path: Path) -> None:
    with ClaimsStore.open(tmp_path) as rw:
        rw.execute("CREATE TABLE note (x INTEGER)")
        rw.execute("INSERT INTO note VALUES (7)")
        with ClaimsStore.open(tmp_path, read_only=True) as ro:
            assert ro.read_only and ro.sql("SELECT x FROM note")["x"].tolist() == [7]
            with pytest.raises(IngestError, match="read-only"):
                ingest_folder(tmp_path, ro)
