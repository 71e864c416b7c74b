"""The detector contract: `Lead` (one explained finding), `Detector` and the `DetectionContext` they read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Lead",
    "Detector",
    "DetectionContext",
    "SEVERITIES",
    "severity_for_score",
    "make_lead_id",
]

SEVERITIES: tuple[str, ...] = ("red", "orange", "yellow")
SEVERITY_ZH = {"red": "红色预警", "orange": "橙色预警", "yellow": "黄色预警"}

# Calibrated score cut-offs shared by every kind: scores mean the same from run to run.
RED_AT = 0.8
ORANGE_AT = 0.6


def severity_for_score(score: float) -> str:
    """Warning tier (red/orange/yellow, 红/橙/黄) of a calibrated 0–1 score."""
    if score >= RED_AT:
        return "red"
    if score >= ORANGE_AT:
        return "orange"
    return "yellow"


def make_lead_id(kind: str, evidence: Iterable[str]) -> str:
    """Stable lead id: the same kind and evidence give the same id on every run."""
    digest = hashlib.sha1()
    digest.update(kind.encode())
    for item in sorted(set(evidence)):
        digest.update(b"\x1f")
        digest.update(str(item).encode())
    return "L" + digest.hexdigest()[:19].upper()


@dataclass
class Lead:
    """One scored, explained finding (线索) with its members, evidence and amount at risk.

    `kind` is `collusion_ring`, `card_skimming`, `drug_resale`, `rule:<rule_id>` or `anomaly:<entity_type>`.
    `evidence` lists mdtrt_ids (or setl_ids) backing the lead; `amount_at_risk` is the fund payments on it.
    """

    kind: str
    score: float
    persons: list[str]
    practitioners: list[str]
    institutions: list[str]
    evidence: list[str]
    amount_at_risk: float
    period_start: datetime | None
    period_end: datetime | None
    explanation_zh: str
    explanation_en: str
    features: dict[str, Any] = field(default_factory=dict)
    severity: str = ""
    lead_id: str = ""

    def __post_init__(self) -> None:
        self.score = float(min(1.0, max(0.0, self.score)))
        self.persons = sorted(set(self.persons))
        self.practitioners = sorted(set(self.practitioners))
        self.institutions = sorted(set(self.institutions))
        self.evidence = sorted(set(self.evidence))
        self.amount_at_risk = round(float(self.amount_at_risk), 2)
        if not self.severity:
            self.severity = severity_for_score(self.score)
        if not self.lead_id:
            self.lead_id = make_lead_id(self.kind, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class DetectionContext(Protocol):
    """Read access a detector gets: the claims store (DuckDB, SQL) and graph projections.

    `sql(query, params)` returns a pandas DataFrame; `con` is the DuckDB connection for Arrow/pandas use.
    `as_of` is the end of the data (latest visit time); `since` limits incremental runs.
    """

    con: Any
    as_of: datetime | None
    since: datetime | None

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> Any: ...


class Detector(Protocol):
    """A detector stores documented parameters in `__init__` and finds leads in `run`.

    `requires` names the data details it needs (`fraudnet.detectors.coverage.REQUIREMENTS`): institutions whose
    data lacks one are not screened, and a detector with no covered institution is not run. A detector may also
    declare `optional` details whose absence only leaves part of its evidence unused.
    """

    kind: str
    requires: tuple[str, ...]

    def run(self, context: DetectionContext) -> list[Lead]: ...
