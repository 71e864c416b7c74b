"""Scores leads against planted truth (`truth.json`): per-kind recall and precision, and look-alikes flagged."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from fraudnet.detectors.base import SEVERITIES, Lead
from fraudnet.errors import InvalidRequestError, NotFoundError

__all__ = ["evaluate", "evaluate_store", "load_truth", "lead_matches_scheme", "key_entities", "PERSON_KINDS",
           "LOOKALIKE_KINDS"]

# Rules about a person; every other rule is about an institution.
PERSON_KINDS = frozenset({"rule:impersonation", "drug_resale", "rule:after_death", "rule:overlapping_stays"})
LOOKALIKE_KINDS = ("family", "chronic_refill", "busy_hospital", "busy_pharmacy", "outbreak")
# Lead kinds that could wrongly blame each look-alike (a family member who is also an ordinary patient in an
# institution's rule lead is not a false alarm on the family). A look-alike record of truth.json may carry its
# own `lead_kinds` list, which then replaces these for that record (other generators plant other look-alikes);
# such a record is matched by `_blames`.
LOOKALIKE_LEAD_KINDS: dict[str, frozenset[str]] = {
    "family": frozenset({"collusion_ring", "drug_resale", "card_skimming", "rule:impersonation"}),
    "chronic_refill": frozenset({"drug_resale", "card_skimming", "rule:impersonation"}),
    "outbreak": frozenset({"collusion_ring", "rule:split_admission"}),
    "busy_hospital": frozenset({"collusion_ring", "rule:discharge_growth", "anomaly:institution"}),
    "busy_pharmacy": frozenset({"card_skimming", "anomaly:pharmacy", "drug_resale"}),
}
MIN_LEAD_SHARE = 0.5
MIN_SCHEME_SHARE = 0.5


def load_truth(path: str | Path) -> dict:
    """Read a generator's truth.json (a folder holding one is accepted too)."""
    p = Path(path)
    if p.is_dir():
        p = p / "truth.json"
    if not p.exists():
        raise NotFoundError(f"truth file {p} does not exist")
    try:
        truth = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"{p}: not valid JSON ({exc})", field="truth") from exc
    if not isinstance(truth, dict) or "schemes" not in truth:
        raise InvalidRequestError(f"{p}: no 'schemes' list", field="truth")
    return truth


def _get(lead: Lead | dict, key: str) -> Any:
    return lead.get(key) if isinstance(lead, dict) else getattr(lead, key)


def key_entities(kind: str, record: Lead | dict) -> set[str]:
    """The entities a lead or scheme is about: persons for person rules, institutions otherwise."""
    key = "persons" if kind in PERSON_KINDS else "institutions"
    return set(_get(record, key) or [])


def lead_matches_scheme(lead: Lead | dict, scheme: dict) -> bool:
    """A lead matches a planted scheme of the same kind when their evidence overlaps substantially: at least half
    of the lead's evidence, or half of the scheme's, is shared — or they share their key entity (institution for
    institution rules, person for person rules) and at least one evidence visit."""
    if _get(lead, "kind") != scheme.get("kind"):
        return False
    lead_ev = set(_get(lead, "evidence") or [])
    scheme_ev = set(scheme.get("evidence") or [])
    shared = len(lead_ev & scheme_ev)
    if not shared:
        return False
    if shared >= MIN_LEAD_SHARE * len(lead_ev) or shared >= MIN_SCHEME_SHARE * len(scheme_ev):
        return True
    kind = scheme["kind"]
    return bool(key_entities(kind, lead) & key_entities(kind, scheme))


def _blames(persons: set[str], insts: set[str], lead: Lead | dict) -> bool:
    """Whether `lead` blames a look-alike record that names its own lead kinds: by a shared person, or by a shared
    institution when the lead is about an institution (an institution rule or anomaly) or the record names no
    persons (a ring or chain at a busy hospital with other people in it does not blame that hospital's patients)."""
    if persons & set(_get(lead, "persons") or []):
        return True
    if not insts & set(_get(lead, "institutions") or []):
        return False
    kind = _get(lead, "kind")
    return not persons or (kind not in PERSON_KINDS and kind.startswith(("rule:", "anomaly:")))


def evaluate(leads: list[Lead] | list[dict], truth: dict) -> dict:
    """Recall and precision per planted kind, for red+orange leads and for all leads, and look-alikes flagged.

    Returns `{"kinds": {kind: {planted, leads, leads_red_orange, recall, precision, recall_all,
    precision_all, matched_schemes, false_leads_red_orange}}, "lookalikes": {kind: {count, flagged: {severity:
    n}, flagged_red}}, "summary": {...}}`. Recall counts schemes matched by at least one lead; precision counts
    leads matching at least one scheme. Kinds without planted schemes report leads only (precision None).
    """
    schemes_by_kind: dict[str, list[dict]] = defaultdict(list)
    for scheme in truth.get("schemes", []):
        schemes_by_kind[scheme["kind"]].append(scheme)
    leads_by_kind: dict[str, list] = defaultdict(list)
    for lead in leads:
        leads_by_kind[_get(lead, "kind")].append(lead)
    # evidence → schemes index for quick matching
    ev_index: dict[tuple[str, str], list[int]] = defaultdict(list)
    all_schemes = truth.get("schemes", [])
    for si, scheme in enumerate(all_schemes):
        for ev in scheme.get("evidence") or []:
            ev_index[(scheme["kind"], ev)].append(si)

    def matches(lead: Any) -> set[int]:
        kind = _get(lead, "kind")
        cands = {si for ev in (_get(lead, "evidence") or []) for si in ev_index.get((kind, ev), ())}
        return {si for si in cands if lead_matches_scheme(lead, all_schemes[si])}

    lead_matches = {id(lead): matches(lead) for lead in leads}
    kinds_out: dict[str, dict] = {}
    for kind in sorted(set(schemes_by_kind) | set(leads_by_kind)):
        planted = schemes_by_kind.get(kind, [])
        kl = leads_by_kind.get(kind, [])
        strong = [lead for lead in kl if _get(lead, "severity") in ("red", "orange")]

        def stats(group: list, planted: list = planted) -> tuple[float | None, float | None, int]:
            hit_schemes = set().union(*(lead_matches[id(lead)] for lead in group)) if group else set()
            good = sum(1 for lead in group if lead_matches[id(lead)])
            recall = len(hit_schemes) / len(planted) if planted else None
            precision = (good / len(group) if group else (1.0 if planted else None)) if planted else None
            return recall, precision, len(hit_schemes)

        recall, precision, matched = stats(strong)
        recall_all, precision_all, _ = stats(kl)
        kinds_out[kind] = {
            "planted": len(planted), "leads": len(kl), "leads_red_orange": len(strong),
            "by_severity": {s: sum(1 for lead in kl if _get(lead, "severity") == s) for s in SEVERITIES},
            "recall": recall, "precision": precision, "recall_all": recall_all, "precision_all": precision_all,
            "matched_schemes": matched,
            "false_leads_red_orange": sum(1 for lead in strong if not lead_matches[id(lead)]) if planted else None,
        }
    look_out: dict[str, dict] = {}
    for look in truth.get("lookalikes", []):
        kind = look.get("kind", "?")
        entry = look_out.setdefault(kind, {"count": 0, "flagged": dict.fromkeys(SEVERITIES, 0), "flagged_red": 0,
                                           "examples": []})
        entry["count"] += 1
        persons = set(look.get("persons") or [])
        insts = set(look.get("institutions") or [])
        own = look.get("lead_kinds") if isinstance(look.get("lead_kinds"), list) else None
        blamable = frozenset(own) if own is not None else LOOKALIKE_LEAD_KINDS.get(kind)
        by_person = kind in ("family", "chronic_refill", "outbreak") and bool(persons)
        worst = None
        for lead in leads:
            if lead_matches[id(lead)]:
                continue  # a lead on a planted scheme is not a false alarm on the look-alike
            if blamable is not None and _get(lead, "kind") not in blamable:
                continue
            if own is not None:
                hit = _blames(persons, insts, lead)
            elif by_person:
                hit = bool(persons & set(_get(lead, "persons") or []))
            else:
                hit = bool(insts & set(_get(lead, "institutions") or []))
            if hit:
                sev = _get(lead, "severity")
                if worst is None or SEVERITIES.index(sev) < SEVERITIES.index(worst):
                    worst = sev
        if worst:
            entry["flagged"][worst] += 1
            if worst == "red" and len(entry["examples"]) < 5:
                entry["examples"].append(look.get("persons", [])[:3] or look.get("institutions", [])[:3])
        entry["flagged_red"] = entry["flagged"]["red"]
    planted_kinds = [k for k, v in kinds_out.items() if v["planted"]]
    summary = {
        "planted_kinds": len(planted_kinds),
        "kinds_meeting_floor": sum(1 for k in planted_kinds
                                   if (kinds_out[k]["recall"] or 0) >= 0.9 and (kinds_out[k]["precision"] or 0) >= 0.8),
        "lookalikes_red": sum(v["flagged_red"] for v in look_out.values()),
        "leads": len(leads),
    }
    return {"kinds": kinds_out, "lookalikes": look_out, "summary": summary}


def evaluate_store(lead_store: Any, truth: dict) -> dict:
    """`evaluate` over the active leads of a `fraudnet.claims.leads.LeadStore`."""
    rows, _ = lead_store.list(limit=100_000)
    return evaluate(rows, truth)
