"""Hostile ingest: identity and phone numbers in columns the contract does not know (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.privacy import hash_identifier, is_certno, is_mobile
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table


def _certno(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


IDS = [_certno("31010119600501123"), _certno("31010119650302124"), _certno("31010119901231001")]
PHONES = ["13512345601", "+86 135-1234-5602", "13512345603"]


def _city_with_extras(folder: Path) -> Path:
    src = write_minimal_city(folder, skip=("psn_info",))
    header, rows = MINIMAL_ROWS["psn_info"]
    write_table(src / "psn_info.csv", header + ["idcard_backup", "contact_phone", "bureau_note"],
                [r + [IDS[i], PHONES[i], f"note{i}"] for i, r in enumerate(rows)])
    return src


def test_recognisers_need_a_valid_check_digit_and_a_mobile_prefix() -> None:
    assert all(is_certno(c) for c in IDS) and not is_certno(IDS[0][:17] + ("0" if IDS[0][17] != "0" else "1"))
    assert not is_certno("PSN0000000000000000001") and not is_certno("123456789012345678")
    assert all(is_mobile(p) for p in PHONES) and not is_mobile("02112345678") and not is_mobile("12345678901")


def test_unknown_columns_are_dropped_by_default(tmp_path: Path) -> None:
    src = _city_with_extras(tmp_path / "in")
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(src, store).ok
        assert store.sql("SELECT count(*) AS n FROM psn_info WHERE _extra IS NOT NULL")["n"][0] == 0
    raw = (ws / "claims.duckdb").read_bytes()
    for value in IDS + ["13512345601", "13512345603"]:
        assert value.encode() not in raw


def test_kept_unknown_columns_hold_identity_and_phone_numbers_masked_and_hashed(tmp_path: Path) -> None:
    src = _city_with_extras(tmp_path / "in")
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(src, store, keep_extra_columns=True).ok
        key = store.secret_key
        extras = [json.loads(e) for e in store.sql("SELECT _extra FROM psn_info ORDER BY psn_no")["_extra"]]
    for i, extra in enumerate(extras):
        assert extra["idcard_backup"] == IDS[i][:4] + "*" * 10 + IDS[i][-4:]
        assert extra["idcard_backup_hash"] == hash_identifier(IDS[i], key)
        assert extra["contact_phone"] == "135****" + PHONES[i][-4:].replace("-", "")
        assert extra["contact_phone_hash"] == hash_identifier("1351234560" + str(i + 1), key)
        assert extra["bureau_note"] == f"note{i}" and "bureau_note_hash" not in extra
    raw = (ws / "claims.duckdb").read_bytes()
    for value in IDS + ["13512345601", "13512345603"]:
        assert value.encode() not in raw


def test_identity_and_phone_numbers_in_known_free_text_columns_are_masked(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("psn_info",))
    header, rows = MINIMAL_ROWS["psn_info"]
    rows = [list(r) for r in rows]
    rows[0][1] = PHONES[0]                    # psn_name holds a phone number
    rows[1][7] = IDS[1]                       # live_addr holds an ID-card number
    write_table(src / "psn_info.csv", header + ["emp_name"], [r + [IDS[2] if i == 2 else "某公司"]
                                                              for i, r in enumerate(rows)])
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(src, store).ok
        got = store.sql("SELECT psn_name, live_addr, emp_name FROM psn_info ORDER BY psn_no").values.tolist()
    assert got[0][0] == "135****5601" and got[0][2] == "某公司"
    assert got[1][1] == IDS[1][:4] + "*" * 10 + IDS[1][-4:]
    assert got[2][2] == IDS[2][:4] + "*" * 10 + IDS[2][-4:] and got[2][0] == "王五"
    raw = (ws / "claims.duckdb").read_bytes()
    for value in IDS + ["13512345601"]:
        assert value.encode() not in raw


def test_a_ragged_line_kept_in_the_quarantine_has_its_identity_and_phone_numbers_masked(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    write_table(src / "mdtrt.csv", header, rows, tail=f"MD009,{IDS[0]},{PHONES[0]},11\n")  # 4 fields of 10
    with ClaimsStore.open(tmp_path / "ws") as store:
        assert ingest_folder(src, store).ok
        value = store.sql("SELECT value FROM quarantine WHERE table_name = 'mdtrt'")["value"][0]
    assert value == f"MD009,{IDS[0][:4]}{'*' * 10}{IDS[0][-4:]},135****5601,11"
