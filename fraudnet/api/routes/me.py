"""`GET /api/me`: who the token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from fraudnet.api.deps import UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.schemas import MeOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["me"], responses=error_responses(401))


@router.get("/me", response_model=MeOut, response_model_exclude_none=True, summary="Current user / 当前用户")
def me(principal: UserDep) -> MeOut:
    """The caller's user name, role and, for a token limited to regions or cases, that scope."""
    scope = principal.scope
    return MeOut(user=principal.user, role=principal.role,
                 scope={"regions": list(scope.regions), "cases": list(scope.cases)} if scope else None)
