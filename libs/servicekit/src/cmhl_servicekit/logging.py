"""Structured JSON logs. Callers pass ids and routing facts in `extra`, never personal data."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Only these `extra` keys are emitted: a stray `name=` or `narrative=` cannot leak into a log line.
ALLOWED_FIELDS = frozenset(
    {
        "event_id",
        "event_type",
        "correlation_id",
        "topic",
        "partition",
        "offset",
        "referral_id",
        "follow_up_id",
        "session_id",
        "count",
        "reason",
        "attempt",
        "service",
        "status",
    }
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k in ALLOWED_FIELDS})
        # The active span's ids (tracing.py), so a log line leads to its trace and back.
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = trace.format_trace_id(span.trace_id)
            entry["span_id"] = trace.format_span_id(span.span_id)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints paths, which may carry ids but never names; keep it, in JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "aiokafka"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel("WARNING")
    # httpx logs every request's full URL at INFO, query string included: a search by family
    # name would put the name in the log. Its warnings (no URL) are enough.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel("WARNING")
