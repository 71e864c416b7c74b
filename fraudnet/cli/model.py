"""`fraudnet model train|evaluate|list|show|pin|unpin|score`: the ranking learned from investigators' decisions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS", "model"]

_RANKINGS = (("learned", "learned model / 学习模型"), ("unsupervised_risk", "unsupervised risk / 无监督风险"),
             ("amount", "amount alone / 仅按金额"))


def _user() -> str:
    return os.environ.get("FRAUDNET_USER") or os.environ.get("USER") or "cli"


def _fmt(m: dict[str, Any], key: str) -> str:
    v, ci = m.get(key), m.get(f"{key}_ci") or [None, None]
    if v is None or v != v:
        return "-"
    if ci[0] is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def evaluation_lines(entity_type: str, ev: dict[str, Any]) -> list[str]:
    """Plain-text lines of one type's held-out evaluation (ROC AUC and AP with 95% intervals per ranking)."""
    how = ev.get("method", "")
    if ev.get("cutoff"):
        how += f" (cut-off {ev['cutoff']}: train {ev.get('train')}, test {ev.get('test')})"
    elif ev.get("folds"):
        how += f" ({ev['folds']} folds)"
    lines = [f"{entity_type}: {ev.get('fraud', 0)} fraud / {ev.get('clean', 0)} clean held out — {how}; "
             f"model {ev.get('chosen')}",
             f"  {'ranking':<34} {'ROC AUC [95% CI]':<26} {'average precision [95% CI]':<26}"]
    for key, name in _RANKINGS:
        m = ev.get("rankings", {}).get(key, {})
        lines.append(f"  {name:<34} {_fmt(m, 'auc'):<26} {_fmt(m, 'ap'):<26}")
    return lines


@click.group("model")
def model() -> None:
    """The ranking learned from labels and decisions / 基于核查结论的学习排序."""


@model.command("train")
@click.option("--no-evaluate", is_flag=True, help="Skip the held-out evaluation / 跳过留出评估")
@click.option("--no-rescore", is_flag=True, help="Do not re-score entities and leads / 不重新评分")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON / 输出 JSON")
@click.pass_context
def train_cmd(ctx: click.Context, no_evaluate: bool, no_rescore: bool, seed: int, as_json: bool) -> None:
    """Fit a calibrated classifier per entity type on the labels (imported outcomes and lead decisions), choose
    gradient boosting or logistic regression by grouped cross-validation, evaluate it held out, then re-score
    entities and leads. With < 20 fraud or < 20 clean labels for every type it says so and changes nothing."""
    from fraudnet.claims.audit import append_audit, ensure_tables
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.features import EntityData
    from fraudnet.learning.model import train, trainable_types
    from fraudnet.learning.scoring import rescore

    workspace = Path(ctx.obj["workspace"])
    try:
        with ClaimsStore.open(workspace, read_only=False) as store:
            from fraudnet.learning.labels import all_labels

            labels = all_labels(store.con)
            data = EntityData.load(store.con) if trainable_types(labels) else None  # read once for both steps
            result = train(store.con, workspace, user=_user(), seed=seed, evaluate=not no_evaluate, labels=labels,
                           data=data)
            scored = None
            if result.version and not no_rescore:
                scored = rescore(store.con, workspace, data=data)
            if result.version:
                ensure_tables(store.con)
                append_audit(store.con, _user(), "model.train", role="admin",
                             detail={"version": result.version, "types": sorted(result.trained),
                                     "skipped": sorted(result.skipped)})
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "rescored": scored}, ensure_ascii=False, default=str))
        return
    click.echo(result.message)
    for t, why in result.skipped.items():
        click.echo(f"{t}: {why}")
    for t, entry in result.trained.items():
        click.echo(f"{t}: {entry['cv'].get('why', entry['model'])}")
        if "evaluation" in entry:
            for line in evaluation_lines(t, entry["evaluation"]):
                click.echo(line)
    if scored:
        click.echo(f"re-scored {scored['entities']} entities and {scored['leads']} leads with {scored['version']} / "
                   "已重新评分")
    click.echo(f"{result.seconds:.1f} s")


@model.command("evaluate")
@click.option("--version", default=None, help="Model version (default: pinned or newest) / 模型版本")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def evaluate_cmd(ctx: click.Context, version: str | None, seed: int, as_json: bool) -> None:
    """ROC AUC and average precision with bootstrap 95% intervals on held-out labels (time split when dated,
    else grouped k-fold by institution), beside the unsupervised risk and amount alone on the same entities."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.features import EntityData
    from fraudnet.learning.labels import all_labels
    from fraudnet.learning.model import MIN_PER_CLASS, current_version, evaluate_holdout, load_manifest

    workspace = Path(ctx.obj["workspace"])
    try:
        version = version or current_version(workspace)
        manifest = load_manifest(workspace, version) if version else {"types": {}}
        with ClaimsStore.open(workspace, read_only=True) as store:
            labels = all_labels(store.con)
            out: dict[str, Any] = {}
            data = None
            for t in ("Institution", "Practitioner", "Person"):
                n_f = int(((labels["entity_type"] == t) & (labels["label"] == "fraud")).sum())
                n_c = int(((labels["entity_type"] == t) & (labels["label"] == "clean")).sum())
                if n_f < MIN_PER_CLASS or n_c < MIN_PER_CLASS:
                    out[t] = {"skipped": f"too few labels: {n_f} fraud, {n_c} clean (need ≥ {MIN_PER_CLASS} each)"}
                    continue
                data = data or EntityData.load(store.con)
                name = manifest.get("types", {}).get(t, {}).get("model")
                out[t] = evaluate_holdout(data, labels, t, seed, model_name=name)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
        return
    for t, ev in out.items():
        if "skipped" in ev:
            click.echo(f"{t}: {ev['skipped']}")
        else:
            for line in evaluation_lines(t, ev):
                click.echo(line)


@model.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Model versions with their training data range and evaluation figures / 模型版本列表."""
    from fraudnet.learning.model import list_versions

    versions = list_versions(ctx.obj["workspace"])
    if not versions:
        click.echo("no model trained yet; run `fraudnet model train` / 尚未训练模型")
        return
    for m in versions:
        flags = ("pinned " if m.get("pinned") else "") + ("current" if m.get("current") else "")
        data = m.get("data") or {}
        types = []
        for t, e in (m.get("types") or {}).items():
            ev = e.get("evaluation", {}).get("rankings", {}).get("learned", {})
            types.append(f"{t} {e.get('model')} AUC {_fmt(ev, 'auc')} AP {_fmt(ev, 'ap')}")
        click.echo(f"{m['version']}  {m.get('created_at')} by {m.get('created_by')}  {flags}".rstrip())
        click.echo(f"  labels decided {m.get('labels_decided_from') or '-'} … {m.get('labels_decided_to') or '-'}; "
                   f"data batches {data.get('batch_from')}–{data.get('batch_to')}, visits {data.get('data_from')} … "
                   f"{data.get('data_to')}")
        for line in types:
            click.echo(f"  {line}")


@model.command("show")
@click.argument("version", required=False)
@click.pass_context
def show_cmd(ctx: click.Context, version: str | None) -> None:
    """A version's manifest (default: the current one) as JSON / 模型版本详情."""
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.model import current_version, load_manifest

    try:
        version = version or current_version(ctx.obj["workspace"])
        if version is None:
            raise click.ClickException("no model trained yet / 尚未训练模型")
        click.echo(json.dumps(load_manifest(ctx.obj["workspace"], version), ensure_ascii=False, indent=2))
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc


def _pin(ctx: click.Context, version: str | None) -> None:
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.model import pin_version
    from fraudnet.learning.scoring import rescore

    try:
        pin_version(ctx.obj["workspace"], version)
        with ClaimsStore.open(ctx.obj["workspace"], read_only=False) as store:
            scored = rescore(store.con, ctx.obj["workspace"])
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo((f"pinned {version}" if version else "unpinned: the newest version is used") +
               (f"; re-scored {scored['leads']} leads with {scored['version']}" if scored else ""))


@model.command("pin")
@click.argument("version")
@click.pass_context
def pin_cmd(ctx: click.Context, version: str) -> None:
    """Pin a version: scores keep using it after newer trainings / 固定模型版本."""
    _pin(ctx, version)


@model.command("unpin")
@click.pass_context
def unpin_cmd(ctx: click.Context) -> None:
    """Use the newest version again / 取消固定."""
    _pin(ctx, None)


@model.command("score")
@click.pass_context
def score_cmd(ctx: click.Context) -> None:
    """Re-score entities and leads with the current version / 重新评分."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.scoring import rescore

    try:
        with ClaimsStore.open(ctx.obj["workspace"], read_only=False) as store:
            scored = rescore(store.con, ctx.obj["workspace"])
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"re-scored {scored['entities']} entities and {scored['leads']} leads with {scored['version']}"
               if scored else "no model trained yet / 尚未训练模型")


@model.command("scores")
@click.option("--type", "entity_type", default=None, help="Person, Practitioner or Institution / 实体类型")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--lang", type=click.Choice(["zh", "en"]), default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines / 输出 JSON")
@click.pass_context
def scores_cmd(ctx: click.Context, entity_type: str | None, limit: int, lang: str, as_json: bool) -> None:
    """Entities by expected recovery (model probability × amount at risk), with the unsupervised risk beside it
    and the top contributing features / 按预期追回金额排序的实体."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.labels import normalise_entity_type
    from fraudnet.learning.scoring import model_entity_scores

    try:
        with ClaimsStore.open(ctx.obj["workspace"], read_only=True) as store:
            frame = model_entity_scores(store.con)
        if entity_type:
            frame = frame[frame["entity_type"] == normalise_entity_type(entity_type)]
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if frame.empty:
        click.echo("no model scores yet; run `fraudnet model train` / 尚无模型评分")
        return
    for rec in frame.head(limit).to_dict("records"):
        if as_json:
            click.echo(json.dumps(rec, ensure_ascii=False, default=str))
            continue
        click.echo(f"{rec['entity_type']:<12} {rec['entity_id']:<22} p={rec['probability']:.3f}  "
                   f"expected {rec['expected_recovery']:>14,.2f}  at risk {rec['amount_at_risk']:>14,.2f}  "
                   f"unsupervised {rec['unsupervised_risk']:.3f}")
        text = rec.get(f"explanation_{lang}")
        if isinstance(text, str) and text:
            click.echo(f"    {text}")


COMMANDS = [model]
