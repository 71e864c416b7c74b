"""The generator bounded by a chunk: large cities made a stretch of visits at a time, tables written in slices."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fraudnet.generate import city as city_mod
from fraudnet.generate import writer
from fraudnet.generate.city import generate_city
from tests import test_generate as tg
from tests.test_generate import City


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def chunked_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """A 2,000-person city made in chunks of 3,000 visits (five or so) and written 1,000 rows at a time."""
    out = tmp_path_factory.mktemp("city-chunked")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(city_mod, "CHUNK_VISITS", 3000)
        mp.setattr(city_mod, "WRITE_ROWS", 1000)
        summary = generate_city(out, persons=2000, seed=7)
    assert summary.counts["mdtrt"] > 3 * 3000  # several chunks
    return City(out)


def test_chunked_city_is_consistent(chunked_city: City) -> None:
    """Keys, foreign keys, settlements = fee lines, stock balances and truth hold across chunk boundaries."""
    tg.test_keys_are_unique(chunked_city)
    tg.test_foreign_keys_resolve(chunked_city)
    tg.test_settlements_add_up(chunked_city)
    tg.test_legit_pharmacies_buy_at_least_what_they_sell(chunked_city)
    tg.test_truth_structure_and_counts(chunked_city)
    fee = chunked_city.t["fee_list"]
    assert fee["feedetl_sn"].is_unique
    # fee lines come in visit order (the chunks follow one another in time; mdtrt_ids ascend with time)
    first = fee.drop_duplicates("mdtrt_id")["mdtrt_id"].tolist()
    assert first == sorted(first) == chunked_city.t["mdtrt"]["mdtrt_id"].tolist()


def test_chunked_city_is_deterministic(chunked_city: City, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(city_mod, "CHUNK_VISITS", 3000)
        mp.setattr(city_mod, "WRITE_ROWS", 1000)
        generate_city(tmp_path, persons=2000, seed=7)
    assert _digest(tmp_path) == _digest(chunked_city.folder)


def test_writing_in_slices_gives_the_same_bytes(small_city_dir: Path, tmp_path: Path) -> None:
    """A city below the chunk size written 997 rows at a time is byte-identical to the usual one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(city_mod, "WRITE_ROWS", 997)
        generate_city(tmp_path, persons=2000, seed=7)
    assert _digest(tmp_path) == _digest(small_city_dir)


def test_id_strings_switch_to_large_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids whose characters could pass the 32-bit offsets of an arrow string are built as large_string."""
    small = writer.id_strings("31", np.arange(5), 18)
    assert small.type == pa.string()
    monkeypatch.setattr(writer, "MAX_STRING_BYTES", 50)
    big = writer.id_strings("31", np.arange(5), 18)
    assert big.type == pa.large_string()
    assert big.to_pylist() == small.to_pylist() == [f"31{i:018d}" for i in range(5)]
    per_row = writer.id_strings(pa.array(["A", "BB", "C", "D", "E"]), np.arange(5), 3)
    assert per_row.to_pylist() == ["A000", "BB001", "C002", "D003", "E004"]


def test_table_writer_keeps_one_schema(tmp_path: Path) -> None:
    """Chunks whose text columns come as string or large_string land in one file with one header."""
    w = writer.TableWriter(tmp_path, "hilist", "csv")
    w.write({"hilist_code": pa.array(["A"]), "hilist_name": pa.array(["x"])})
    w.write({"hilist_code": pa.array(["B"], pa.large_string()), "hilist_name": pa.array(["y"], pa.large_string())})
    path = w.close()
    assert path.read_text().splitlines() == ['"hilist_code","hilist_name"', '"A","x"', '"B","y"']
    assert w.rows == 2
