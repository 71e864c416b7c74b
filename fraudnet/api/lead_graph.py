"""The lead-subgraph use case, written once: a lead's members in the graph, the relationships among them and its
evidence visits (the lead's chart answer and its GraphML/JSON export both read it here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudnet.api.scope import ScopedLeads
from fraudnet.claims.queries import resolve_members
from fraudnet.errors import NotFoundError
from fraudnet.graph.model import Subgraph
from fraudnet.graph.store import GraphQueries

__all__ = ["LeadGraph", "lead_subgraph"]


@dataclass(frozen=True)
class LeadGraph:
    """A lead (as the principal may see it) and its subgraph."""

    lead: dict[str, Any]
    subgraph: Subgraph


def lead_subgraph(leads: ScopedLeads, store: GraphQueries, lead_id: str, include_visits: bool = True) -> LeadGraph:
    """The lead's members, the relationships among them, its evidence visits (`props.evidence = true`) and, with
    `include_visits`, the other visits connecting members. NotFoundError (404) for an unknown lead or one none of
    whose members is in the graph."""
    lead = leads.require(lead_id)
    members = resolve_members(leads.con, lead.get("persons") or [], lead.get("practitioners") or [],
                              lead.get("institutions") or [])
    if not members:
        raise NotFoundError(f"lead {lead_id!r}: none of its members is in the graph")
    sub = store.subgraph(members, include_visits=include_visits, evidence=lead.get("evidence") or [])
    return LeadGraph(lead, sub)
