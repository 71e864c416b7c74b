"""Hostile parameter values for the Spark engine: inlined as one literal each, never as SQL text."""

from __future__ import annotations

import pytest

sqlglot = pytest.importorskip("sqlglot")

from sqlglot import exp  # noqa: E402

from fraudnet.engines.dialect import inline_params, to_dialect  # noqa: E402

NASTY = ["x' OR '1'='1", "a'; DROP TABLE leads; --", "$other", "?", "-- comment", "/* x */", "it''s", "\\'", "回'车"]


@pytest.mark.parametrize("value", NASTY)
def test_a_hostile_string_stays_one_literal(value: str) -> None:
    sql = to_dialect("SELECT mdtrt_id FROM visit_fact WHERE psn_no = $p AND fixmedins_code IN (SELECT unnest($l))",
                     {"p": value, "l": [value, "ok"], "other": "never"})
    tree = sqlglot.parse_one(sql, read="spark")
    strings = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
    assert strings == [value, value, "ok"]
    assert "DROP" not in [t.upper() for t in sql.split()] or "DROP TABLE" in value.upper()
    assert len(list(tree.find_all(exp.Drop))) == 0


def test_parameter_markers_inside_quotes_and_identifiers_are_left_alone() -> None:
    assert inline_params("SELECT '$p ?' AS \"$p?\", $p", {"p": 1}) == "SELECT '$p ?' AS \"$p?\", 1"
    with pytest.raises(KeyError):
        inline_params("SELECT $missing", {"p": 1})
    with pytest.raises(TypeError):
        inline_params("SELECT $p", {"p": object()})
