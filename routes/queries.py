"""``GET /queries/{name}``: run a saved query over plain HTTP, as JSON or as a CSV download.

For dashboards and spreadsheets that cannot speak GraphQL: ``?var=value`` sets variables
(converted by each variable's declared type, lists by repeating the parameter, input objects
as JSON text); ``version`` picks an older text; ``format=csv`` (or ``Accept: text/csv``) asks
for the first list of the answer as CSV. It runs exactly as ``runSavedQuery`` does: as the
bearer-token caller, logged, cached, audited.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.schema import schema
from auth.identity import authenticate
from config import Settings
from errors import BadUserInput, ShmsError
from schema import saved_documents
from schema.context import Context

log = logging.getLogger("shms.queries")

RESERVED = frozenset({"format", "version"})
FORMATS = frozenset({"json", "csv"})
STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection)."""
NO_STORE = {"Cache-Control": "no-store"}


# -- CSV -------------------------------------------------------------------------------------


def _rows_in(value: Any) -> list[Any] | None:
    """The first list met walking ``value`` depth-first; a connection's edges become nodes."""
    if isinstance(value, list):
        if value and all(isinstance(item, dict) and "node" in item for item in value):
            return [item["node"] for item in value]
        return value
    if isinstance(value, dict):
        for item in value.values():
            found = _rows_in(item)
            if found is not None:
                return found
    return None


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        out[prefix or "value"] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        out[prefix or "value"] = value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def to_csv(data: Any) -> str:
    """Rows: the first list in ``data`` (one row of ``data`` itself if it holds none);
    columns: the dotted paths of the rows' scalar leaves, nested lists as JSON text."""
    rows = _rows_in(data)
    if rows is None:
        rows = [] if data is None else [data]
    flat: list[dict[str, Any]] = []
    for row in rows:
        cells: dict[str, Any] = {}
        _flatten(row, "", cells)
        flat.append(cells)
    columns: list[str] = list(dict.fromkeys(name for cells in flat for name in cells))
    # A null object in one row and its fields in another: keep the fields.
    columns = [c for c in columns if not any(o.startswith(c + ".") for o in columns)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180: CRLF, minimal quoting
    if columns:
        writer.writerow(columns)
        for cells in flat:
            writer.writerow([_cell(cells.get(c)) for c in columns])
    return out.getvalue()


# -- the endpoint ----------------------------------------------------------------------------


def _error_body(exc: ShmsError) -> dict[str, Any]:
    return {
        "errors": [{"message": exc.message, "extensions": {"code": exc.code, **exc.extensions}}]
    }


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/csv" for part in accept.split(","))


def _arguments(request: Request) -> tuple[str | None, int | None, dict[str, list[str]]]:
    params = request.query_params
    format = params.get("format")
    if format is not None and format not in FORMATS:
        raise BadUserInput("format: use json or csv", {"format": "must be json or csv"})
    version: int | None = None
    if params.get("version") is not None:
        try:
            version = int(params["version"])
        except ValueError:
            raise BadUserInput("version: not a number", {"version": "must be an Int"}) from None
    variables = {k: params.getlist(k) for k in params if k not in RESERVED}
    return format, version, variables


def _headers(sink: Mapping[str, str], extra: Mapping[str, str] = NO_STORE) -> dict[str, str]:
    return {**sink, **extra}


def routes(settings: Settings) -> list[Route]:
    """The endpoint, bound to the app's settings."""

    async def run_saved_query(request: Request) -> Response:
        name = request.path_params["name"]
        sink: dict[str, str] = {}  # RateLimit-* headers set by the inner execution
        request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:64]
        try:
            format, version, variables = _arguments(request)
            principal, auth_error = await authenticate(
                request.app.state.tokens, settings, request.headers.get("authorization")
            )
            context = Context(
                settings=settings,
                request=request,
                principal=principal,
                auth_error=auth_error,
                request_id=request_id,
                client_address=request.client.host if request.client else None,
                rate_headers=sink,
            )
            result = await saved_documents.run(
                schema, context, name, version=version, query_string=variables, via="http"
            )
        except ShmsError as exc:
            status = STATUS.get(exc.code, 200)
            headers = _headers(sink)
            if status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            return JSONResponse(_error_body(exc), status_code=status, headers=headers)
        except Exception:
            log.exception("saved query %s failed (request %s)", name, request_id)
            internal = {"code": "INTERNAL", "requestId": request_id}
            failed = {"errors": [{"message": "Internal server error", "extensions": internal}]}
            return JSONResponse(failed, status_code=500, headers=_headers(sink))
        if _wants_csv(request, format) and not result.errors:
            disposition = f'attachment; filename="{result.name}.csv"'
            return Response(
                to_csv(result.data),
                media_type="text/csv; charset=utf-8",
                headers=_headers(sink, {**NO_STORE, "Content-Disposition": disposition}),
            )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = result.errors
        body.update(name=result.name, version=result.version)
        return JSONResponse(body, headers=_headers(sink))

    return [Route("/queries/{name}", run_saved_query, methods=["GET"], name="saved_query")]
