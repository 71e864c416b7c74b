"""The one place where `fraudnet.errors` become HTTP status codes, with a uniform JSON error body.

Body: `{"error": <code>, "message": <text naming the offending value>, "field": <parameter or null>}`;
request-validation errors (422) keep FastAPI's `detail` list next to those keys.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudnet import errors as fe
from fraudnet.api.schemas import ErrorOut

__all__ = ["install_error_handlers", "status_for", "ERROR_RESPONSES"]

log = logging.getLogger(__name__)

# Most specific first.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (fe.NotFoundError, 404, "not_found"),
    (fe.PermissionDeniedError, 403, "forbidden"),
    (fe.NotAuthenticatedError, 401, "unauthorized"),
    (fe.InvalidRequestError, 400, "invalid_request"),
    (fe.QueryLimitError, 400, "query_limit"),
    (fe.MissingTableError, 400, "missing_table"),
    (fe.MissingColumnError, 400, "missing_column"),
    (fe.IngestError, 400, "ingest_error"),
    (fe.DetectorError, 400, "detector_error"),
    (fe.Neo4jUnavailableError, 503, "neo4j_unavailable"),
    (fe.StoreError, 503, "store_error"),
    (fe.ConfigError, 409, "config_error"),
    (fe.FraudnetError, 400, "error"),
)


def status_for(exc: Exception) -> tuple[int, str]:
    """HTTP status and error code of a fraudnet error."""
    for cls, code, name in _STATUS:
        if isinstance(exc, cls):
            return code, name
    return 500, "internal_error"


def _body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "field": field, **extra}


async def _fraudnet_error(request: Request, exc: Exception) -> JSONResponse:
    code, name = status_for(exc)
    field = getattr(exc, "field", None)
    if code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(_body(name, str(exc), field), status_code=code, headers=headers)


_HTTP_NAMES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type", 503: "unavailable"}


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    field = None
    if isinstance(detail, dict):
        field = detail.get("field")
        detail = detail.get("message", str(detail))
    return JSONResponse(_body(_HTTP_NAMES.get(exc.status_code, "error"), str(detail), field),
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = exc.errors()
    first = errs[0] if errs else {}
    loc = [str(p) for p in first.get("loc", ())]
    named = [p for p in loc if p not in ("query", "path", "body", "header", "form")]
    field = ".".join(named) or (loc[-1] if loc else None)
    value = first.get("input")
    shown = repr(value) if value is not None and not isinstance(value, dict | list) else ""
    message = f"{field}: {first.get('msg', 'invalid value')}" + (f" (got {shown[:200]})" if shown else "")
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in errs]
    return JSONResponse(_body("validation_error", message, field, detail=detail), status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(_body("internal_error", f"internal error: {type(exc).__name__}"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(fe.FraudnetError, _fraudnet_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorOut}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error codes."""
    text = {400: "Invalid parameter (the field is named)", 401: "Missing or invalid token",
            403: "Role not allowed", 404: "Unknown entity, lead or job", 409: "Not available in this mode",
            413: "Upload too large", 503: "Store busy or Neo4j unreachable"}
    return {c: _err(text[c]) for c in codes}


ERROR_RESPONSES = error_responses
