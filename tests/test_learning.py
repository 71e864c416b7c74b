"""Labels in, a model that learns from them, the queue using it — on a small hand-built city (tests/learning_world)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fraudnet.claims.leads import LeadStore
from fraudnet.detectors.base import Lead
from fraudnet.learning.features import EntityData
from fraudnet.learning.labels import all_labels, decision_labels, import_labels, list_labels
from fraudnet.learning.model import (
    bootstrap_ci,
    current_version,
    evaluate_holdout,
    list_versions,
    pin_version,
    ranking_metrics,
    train,
)
from fraudnet.learning.scoring import rescore
from tests.learning_world import CLEAN, FRAUD, build_world, institution_labels


@pytest.fixture(scope="module")
def world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("learnworld") / "claims.duckdb"
    con = duckdb.connect(str(path))
    build_world(con)
    con.close()
    return path


@pytest.fixture()
def ws(world_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the toy city's claims store as a workspace."""
    (tmp_path / "claims.duckdb").write_bytes(world_db.read_bytes())
    return tmp_path


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _lead(inst: str, score: float = 0.7, kind: str = "rule:over_standard_price", amount: float = 1000.0) -> Lead:
    return Lead(kind=kind, score=score, persons=["P0001"], practitioners=[], institutions=[inst],
                evidence=[f"E-{inst}-{kind}"], amount_at_risk=amount, period_start=datetime(2025, 1, 1),
                period_end=datetime(2025, 2, 1), explanation_zh=f"{inst} 超标准收费",
                explanation_en=f"{inst} overcharged", features={"visits": 3})


# ---------------------------------------------------------------------------------------------------- labels
def test_import_chinese_headers_and_values_then_idempotent(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    f = _csv(ws / "outcomes.csv", ["实体类型", "编号", "结论", "日期", "来源"],
             [["机构", "H01", "违规", "2025-03-02", "飞行检查"], ["人员", "P0002", "正常", "2025/04/01", "举报线索"],
              ["Practitioner", "D010", "fraud", "", ""]])
    rep = import_labels(con, f, user="alice")
    assert (rep.loaded, rep.quarantined, rep.updated) == (3, 0, 0)
    stored = list_labels(con).set_index("entity_id")
    assert stored.loc["H01", "label"] == "fraud" and stored.loc["H01", "entity_type"] == "Institution"
    assert stored.loc["P0002", "label"] == "clean" and str(stored.loc["P0002", "decided_at"])[:10] == "2025-04-01"
    assert stored.loc["H01", "decided_by"] == "alice" and stored.loc["H01", "source"] == "飞行检查"
    again = import_labels(con, f)
    assert again.already_imported and len(list_labels(con)) == 3
    # The same rows in another file: unchanged, not duplicated; a changed outcome replaces the old one.
    g = _csv(ws / "later.csv", ["entity_type", "entity_id", "label", "decided_at"],
             [["Institution", "H01", "fraud", "2025-03-02"], ["Person", "P0002", "fraud", "2025-06-01"]])
    rep2 = import_labels(con, g)
    assert (rep2.loaded, rep2.updated, rep2.unchanged) == (0, 1, 1)
    assert list_labels(con).set_index("entity_id").loc["P0002", "label"] == "fraud"
    assert len(list_labels(con)) == 3


def test_import_xlsx(ws: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["entity_type", "entity_id", "label", "decided_at", "note"])
    sheet.append(["Institution", "H03", "clean", datetime(2025, 5, 6), "飞检未发现问题"])
    sheet.append(["Institution", "H04", "违规", None, None])
    path = ws / "outcomes.xlsx"
    book.save(path)
    con = duckdb.connect(str(ws / "claims.duckdb"))
    rep = import_labels(con, path)
    assert rep.loaded == 2
    got = list_labels(con).set_index("entity_id")
    assert got.loc["H04", "label"] == "fraud" and str(got.loc["H03", "decided_at"])[:10] == "2025-05-06"


def test_decisions_are_labels_and_the_latest_wins(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    store = LeadStore(con)
    store.save_run([_lead("H05"), _lead("H25")], ["rule:over_standard_price"])
    ids = {r["institutions"][0]: r["lead_id"] for r in store.all_leads()}
    for inst, final in (("H05", "confirmed"), ("H25", "dismissed")):
        store.set_status(ids[inst], "reviewing", "bob")
        store.set_status(ids[inst], final, "bob")
    dec = decision_labels(con).set_index("entity_id")
    assert dec.loc["H05", "label"] == "fraud" and dec.loc["H25", "label"] == "clean"
    assert dec.loc["H05", "decided_by"] == "bob" and "P0001" not in dec.index  # key entities only
    # An older imported outcome for H25 (fraud, 2024) is overridden by the newer dismissal.
    f = _csv(ws / "old.csv", ["entity_type", "entity_id", "label", "decided_at"],
             [["Institution", "H25", "fraud", "2024-01-01"]])
    import_labels(con, f)
    merged = all_labels(con).set_index("entity_id")
    assert merged.loc["H25", "label"] == "clean" and merged.loc["H25", "origin"] == "decision"


def test_labels_cli_import_list_and_audit(ws: Path) -> None:
    from fraudnet.cli import main

    f = _csv(ws / "o.csv", ["实体类型", "编号", "结论"], [["机构", "H07", "违规"], ["机构", "H27", "正常"]])
    runner = CliRunner()
    res = runner.invoke(main, ["-w", str(ws), "labels", "import", str(f)], env={"FRAUDNET_USER": "carol"})
    assert res.exit_code == 0, res.output
    assert "2 new" in res.output
    res = runner.invoke(main, ["-w", str(ws), "labels", "list", "--json"])
    assert res.exit_code == 0 and "H07" in res.output and "H27" in res.output
    con = duckdb.connect(str(ws / "claims.duckdb"), read_only=True)
    audit = con.execute("SELECT \"user\", action, detail FROM audit_log WHERE action = 'labels.import'").fetchall()
    assert audit and audit[0][0] == "carol" and "o.csv" in audit[0][2]


# ---------------------------------------------------------------------------------------------------- features
def test_own_label_never_enters_own_features(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"), read_only=True)
    data = EntityData.load(con)
    labels = institution_labels()
    before = data.features(labels)["Institution"]
    flipped = labels.copy()
    flipped.loc[flipped["entity_id"] == "H03", "label"] = "clean"
    after = data.features(flipped)["Institution"]
    pd.testing.assert_series_equal(before.loc["H03"], after.loc["H03"])
    # …while a neighbour sharing H03's ring practitioner (R0: H00–H03) does see the change.
    col = "gba_shared_prac_fraud_institutions"
    assert before.loc["H01", col] > after.loc["H01", col]
    # Persons who visited H03 see it too (their own label is not involved).
    p = data.features(labels)["Person"]
    q = data.features(flipped)["Person"]
    assert (p["gba_fraud_institution_share"] >= q["gba_fraud_institution_share"]).all()
    assert (p["gba_fraud_institution_share"] > q["gba_fraud_institution_share"]).any()


def test_lead_decision_is_no_feature_of_its_score(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    store = LeadStore(con)
    store.save_run([_lead("H02"), _lead("H22"), _lead("H30", kind="rule:duplicate_charge")],
                   ["rule:over_standard_price", "rule:duplicate_charge"])
    f = _csv(ws / "o.csv", ["entity_type", "entity_id", "label"],
             [["Institution", i, "fraud"] for i in FRAUD if i != "H02"]
             + [["Institution", i, "clean"] for i in CLEAN if i not in ("H22", "H30")])
    import_labels(con, f)
    result = train(con, ws, evaluate=False, labels=institution_labels())
    assert result.version and "Institution" in result.trained
    rescore(con, ws)
    lid = {r["institutions"][0]: r["lead_id"] for r in store.all_leads()}
    p_before = store.get(lid["H02"])["model_probability"]
    assert p_before is not None
    assert store.get(lid["H02"])["expected_recovery"] == pytest.approx(p_before * 1000, abs=0.01)
    store.set_status(lid["H02"], "reviewing", "bob")
    store.set_status(lid["H02"], "confirmed", "bob")
    rescore(con, ws)
    assert store.get(lid["H02"])["model_probability"] == pytest.approx(p_before, abs=1e-9)
    # Dismissing the other lead does not move H02's score either (decided leads see no decision labels).
    store.set_status(lid["H22"], "reviewing", "bob")
    store.set_status(lid["H22"], "dismissed", "bob")
    rescore(con, ws)
    assert store.get(lid["H02"])["model_probability"] == pytest.approx(p_before, abs=1e-9)


# ---------------------------------------------------------------------------------------------------- model
def test_too_few_labels_changes_nothing(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    labels = institution_labels(FRAUD[:19], CLEAN)  # 19 fraud < 20
    result = train(con, ws, labels=labels)
    assert result.version is None and "Institution" in result.skipped and "too few labels" in result.message
    assert not (ws / "models").exists() and current_version(ws) is None


def test_train_manifest_versions_pin_and_held_out_figures(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    labels = institution_labels()
    first = train(con, ws, labels=labels)
    assert first.version is not None
    entry = first.trained["Institution"]
    assert entry["model"] in ("gradient_boosting", "logistic") and "average precision" in entry["cv"]["why"]
    ev = entry["evaluation"]
    assert ev["method"].startswith("grouped k-fold") and ev["fraud"] == 20 and ev["clean"] == 20
    learned = ev["rankings"]["learned"]
    assert learned["auc"] > 0.9 and learned["auc_ci"][0] <= learned["auc"] <= learned["auc_ci"][1]
    assert set(ev["rankings"]) == {"learned", "unsupervised_risk", "amount"}
    second = train(con, ws, labels=labels, evaluate=False)
    assert current_version(ws) == second.version
    pin_version(ws, first.version)
    assert current_version(ws) == first.version
    versions = {m["version"]: m for m in list_versions(ws)}
    assert versions[first.version]["pinned"] and versions[first.version]["data"]["batch_to"] == 2
    pin_version(ws, None)
    assert current_version(ws) == second.version


def test_time_split_when_labels_are_dated(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"), read_only=True)
    data = EntityData.load(con)
    labels = institution_labels()
    labels["decided_at"] = [f"2025-{1 + (i % 20) * 12 // 20:02d}-15" for i in range(len(labels))]
    ev = evaluate_holdout(data, labels, "Institution")
    assert ev["method"] == "time split" and ev["train"] + ev["test"] == 40 and ev["cutoff"].startswith("2025-")


def test_metrics_and_bootstrap_intervals() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(int)
    s = np.round(rng.random(300) + 0.5 * y, 1)
    m = ranking_metrics(y, s)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s)) and m["ap"] == pytest.approx(average_precision_score(y, s))
    ci = bootstrap_ci(y, {"a": s, "b": -s}, n_boot=200)
    assert ci["a"]["auc_ci"][0] < m["auc"] < ci["a"]["auc_ci"][1] and ci["b"]["auc_ci"][1] < 0.5


def test_model_cli_train_list_show(ws: Path) -> None:
    from fraudnet.cli import main

    con = duckdb.connect(str(ws / "claims.duckdb"))
    f = _csv(ws / "o.csv", ["entity_type", "entity_id", "label"],
             [["Institution", i, "fraud"] for i in FRAUD] + [["Institution", i, "clean"] for i in CLEAN])
    import_labels(con, f)
    con.close()
    runner = CliRunner()
    res = runner.invoke(main, ["-w", str(ws), "model", "train"])
    assert res.exit_code == 0, res.output
    assert "ROC AUC" in res.output and "amount alone" in res.output and "Person: too few labels" in res.output
    res = runner.invoke(main, ["-w", str(ws), "model", "list"])
    assert res.exit_code == 0 and "current" in res.output and "data batches 1–2" in res.output
    res = runner.invoke(main, ["-w", str(ws), "model", "show"])
    assert res.exit_code == 0 and '"Institution"' in res.output


def test_a_detection_run_rescores_its_leads_when_a_model_exists(ws: Path) -> None:
    con = duckdb.connect(str(ws / "claims.duckdb"))
    store = LeadStore(con)
    store.save_run([_lead("H06")], ["rule:over_standard_price"])
    assert store.all_leads()[0]["features"] and store.get(store.all_leads()[0]["lead_id"])["model_probability"] is None
    version = train(con, ws, labels=institution_labels(), evaluate=False).version
    saved = store.save_run([_lead("H06"), _lead("H26")], ["rule:over_standard_price"])
    assert saved["model"]["version"] == version and saved["model"]["leads"] == 2
    got = {r["institutions"][0]: store.get(r["lead_id"]) for r in store.all_leads()}
    assert got["H06"]["model_probability"] > got["H26"]["model_probability"]  # H06 is one of the dear ones
    assert got["H26"]["raised"]["model_version"] == version and got["H06"]["raised"]["model_version"] is None
    assert got["H06"]["raised_model_version"] == version  # its first model score, kept from then on
    assert "expected recovery" in got["H06"]["model_explanation_en"]
    assert "预期追回" in got["H06"]["model_explanation_zh"]
    scores = con.execute("SELECT entity_id, probability, unsupervised_risk, explanation_en FROM model_scores "
                         "WHERE entity_type = 'Institution' AND entity_id = 'H06'").fetchone()
    assert scores[1] == pytest.approx(got["H06"]["model_probability"]) and "top factors" in scores[3]


def test_entity_risk_carries_the_model_beside_the_unsupervised_score(ws: Path) -> None:
    """Once a model has scored the store, entity risk (API profile, scores export) shows its probability and
    expected recovery next to the unsupervised score; before, neither appears."""
    from fraudnet.exports.scores import scores_to_bytes

    con = duckdb.connect(str(ws / "claims.duckdb"))
    store = LeadStore(con)
    store.save_run([_lead("H06"), _lead("H26")], ["rule:over_standard_price"])
    before = store.entity_scores()
    assert "model_probability" not in before.columns
    assert b"expected_recovery" not in scores_to_bytes(before, "csv")
    train(con, ws, labels=institution_labels(), evaluate=False)
    store.save_run([_lead("H06"), _lead("H26")], ["rule:over_standard_price"])  # re-scored with the model
    after = store.entity_scores().set_index(["entity_type", "entity_id"])
    h06, h26 = after.loc[("Institution", "H06")], after.loc[("Institution", "H26")]
    assert h06["model_probability"] > h26["model_probability"] and h06["score"] > 0
    assert h06["expected_recovery"] == pytest.approx(h06["model_probability"] * h06["amount_at_risk"], rel=0.05)
    assert "预期追回" in h06["model_explanation_zh"]
    header = scores_to_bytes(after.reset_index(), "csv").decode("utf-8-sig").splitlines()[0]
    assert header.endswith("model_probability,expected_recovery,model_explanation_zh,model_explanation_en")
