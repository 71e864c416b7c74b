"""The authenticated caller (`Principal`) and how personal data is masked for roles without PII rights."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from fraudnet import privacy
from fraudnet.claims.scope import Scope
from fraudnet.graph.model import EntityProfile, Node

__all__ = ["Principal", "CASE_ROLES", "mask_node", "mask_profile", "masked_props", "person_ids"]

CASE_ROLES = ("admin", "investigator")
# Properties that are personal data, with how a viewer sees them.
_NAME_PROPS = ("psn_name", "prac_psn_name")
_LABEL_FROM = {"Person": "psn_name", "Practitioner": "prac_psn_name", "Address": "live_addr"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user: str
    role: str
    token_id: str
    scope: Scope | None = None  # regions and/or cases the token is limited to; None: the whole workspace

    @property
    def sees_pii(self) -> bool:
        return self.role in CASE_ROLES


def _mask_address(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    keep = min(6, max(1, len(value) // 3))
    return value[:keep] + "*" * 4


def _mask_birth(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return f"{value.year}-**-**"
    if isinstance(value, str) and len(value) >= 4:
        return value[:4] + "-**-**"
    return value


def masked_props(props: dict[str, Any]) -> dict[str, Any]:
    """Properties as a viewer sees them: names 张*三, certno 3101**********1234, phones 138****5678, address and
    birth date shortened."""
    out = dict(props)
    for key in _NAME_PROPS:
        if out.get(key):
            out[key] = privacy.mask_name(str(out[key]))
    for key in ("certno", "certno_masked"):
        if out.get(key) and "*" not in str(out[key]):
            out[key] = privacy.mask_certno(str(out[key]))
    for key in ("mob", "mob_masked", "tel"):
        if out.get(key) and "*" not in str(out[key]):
            out[key] = privacy.mask_phone(str(out[key]))
    if out.get("psn_no") and "*" not in str(out["psn_no"]):  # visits and persons name the person
        out["psn_no"] = privacy.mask_certno(str(out["psn_no"]))
    if out.get("live_addr"):
        out["live_addr"] = _mask_address(out["live_addr"])
    if out.get("brdy"):
        out["brdy"] = _mask_birth(out["brdy"])
    return out


def _masked_label(node_type: str, key: str, label: str, raw: dict[str, Any], masked: dict[str, Any]) -> str:
    prop = _LABEL_FROM.get(node_type)
    if prop is None:
        return label
    if raw.get(prop) not in (None, "") and label == str(raw.get(prop)):
        return str(masked.get(prop))
    if label == key:
        return label
    # A label derived from personal data in another way: show the key instead.
    return key


def mask_node(node: Node, principal: Principal) -> Node:
    """The node as the principal may see it (unchanged for admins and investigators)."""
    if principal.sees_pii:
        return node
    props = masked_props(node.props or {})
    key = _shown_key(node.type, node.key)
    return replace(node, key=key, props=props,
                   label=_shown_key(node.type, _masked_label(node.type, node.key, node.label, node.props or {}, props)))


def mask_profile(profile: EntityProfile, principal: Principal) -> EntityProfile:
    """The entity profile as the principal may see it."""
    if principal.sees_pii:
        return profile
    props = masked_props(profile.props or {})
    return replace(profile, key=_shown_key(profile.type, profile.key), props=props,
                   label=_shown_key(profile.type, _masked_label(profile.type, profile.key, profile.label,
                                                                profile.props or {}, props)))


def _shown_key(node_type: str, value: str) -> str:
    """A person's number (psn_no, the key of a Person node) as viewers see it: 3101************6404. The node id
    keeps it (the chart asks for neighbours by id); keys and labels are what is shown."""
    if node_type != "Person" or not value or "*" in value:
        return value
    return privacy.mask_certno(value) or value


def person_ids(node_ids: Iterable[str]) -> list[str]:
    """The Person node ids among `node_ids`."""
    return [n for n in node_ids if n.startswith("Person:")]
