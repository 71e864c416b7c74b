"""The ego-network service: `EgoService.answer(query, principal) -> EgoAnswer`, its graph worker processes and
the renderer they run (see `service.EgoService` for which path answers what)."""

from __future__ import annotations

from fraudnet.api.ego.answer import EgoAnswer, EgoQuery
from fraudnet.api.ego.service import EgoService
from fraudnet.api.ego.workers import default_worker_count, forking_available

__all__ = ["EgoService", "EgoQuery", "EgoAnswer", "default_worker_count", "forking_available"]
