"""Log set-up: plain text by default, JSON lines with ``SHMS_LOG_FORMAT=json`` (python-json-logger).

Every record gets ``request_id`` (the ``X-Request-Id`` SHMS answers with, set per HTTP request
and WebSocket connection by ``observability.requests``) and ``trace_id``/``span_id`` while
tracing is on. Records hold no patient data: services log ids, never names or values, and
tracebacks are written without the exception's message (a driver's duplicate-key error, say,
repeats the value), only its type and where it was raised.
"""

from __future__ import annotations

import logging
import sys
import traceback
from contextvars import ContextVar
from types import TracebackType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from observability import tracing

REQUEST_ID: ContextVar[str | None] = ContextVar("shms_request_id", default=None)

PLAIN_FORMAT = "%(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ("levelname", "name", "message", "request_id", "trace_id", "span_id")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def request_id() -> str | None:
    return REQUEST_ID.get()


class RequestContext(logging.Filter):
    """Stamps each record with the request and trace it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        ids = tracing.current_ids() if tracing.active() else None
        record.trace_id, record.span_id = ids if ids is not None else (None, None)
        return True


def _withheld(ei: ExcInfo) -> str:
    """The traceback's frames and the exception's type, chained causes included; no message."""
    kind, value, tb = ei
    parts: list[str] = []
    seen: set[int] = set()
    while value is not None and id(value) not in seen:
        seen.add(id(value))
        frames = "".join(traceback.format_tb(value.__traceback__ if parts else tb))
        name = f"{type(value).__module__}.{type(value).__qualname__}"
        parts.append(f"Traceback (most recent call last):\n{frames}{name} (message not logged)")
        value = value.__cause__ or value.__context__
    if not parts and kind is not None:
        parts.append(kind.__qualname__)
    return "\n\nWhile handling, or caused by:\n".join(reversed(parts))


class _Withholding(logging.Formatter):
    """Formats tracebacks without messages, ignoring a text another handler cached on the record
    (``exc_text``, from ``logging.Formatter``: it would carry the message)."""

    def formatException(self, ei: Any) -> str:
        return _withheld(ei)

    def format(self, record: logging.LogRecord) -> str:
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached


class PlainFormatter(_Withholding):
    pass


class JsonLines(_Withholding, JsonFormatter):
    pass


class QueryStringDropped(logging.Filter):
    """uvicorn's access lines without the query string: a GET query or a saved query's
    variables may carry a patient's name."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


_CONTEXT = RequestContext()
_ACCESS = QueryStringDropped()


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonLines(
            " ".join(f"%({name})s" for name in JSON_FIELDS),
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    return PlainFormatter(PLAIN_FORMAT)


def handler(kind: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``kind`` (``plain`` or ``json``) lines, stamped with the context."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.setFormatter(formatter(kind))
    made.addFilter(_CONTEXT)
    setattr(made, "_shms", kind)  # noqa: B010 - marks the handler as SHMS's own
    return made


def configure(level: str, kind: str) -> None:
    """Root logging, as ``logging.basicConfig`` would (a process that set up logging itself
    keeps it), in ``kind`` lines; in JSON, uvicorn's own loggers write through it too."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_shms", None)]
    if not root.handlers:
        ours = [handler(kind)]
        root.addHandler(ours[0])
        root.setLevel(level.upper())
    for found in ours:
        if getattr(found, "_shms", None) != kind:
            found.setFormatter(formatter(kind))
            setattr(found, "_shms", kind)  # noqa: B010
    for found in root.handlers:
        found.addFilter(_CONTEXT)  # any handler shows the request id to formatters that ask
    logging.getLogger("uvicorn.access").addFilter(_ACCESS)
    if kind == "json" and ours:
        for name in UVICORN_LOGGERS:
            named = logging.getLogger(name)
            named.handlers.clear()
            named.propagate = True
