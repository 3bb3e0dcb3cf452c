"""Statewide metrics API under /api/v1: aggregates only, never a person; JSON or CSV.

Every count of people or referrals is published with small-cell suppression; the token-free
public endpoint (the dashboard's source) serves the same suppressed statewide view."""

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.envelope import BoundedDatetime
from cmhl_reporting.application.queries import METRIC_DIMENSIONS, MetricsQueries
from cmhl_reporting.domain.window import Window, WindowError, window_from
from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["metrics"])

MetricsReader = Annotated[
    Principal, require_any(Role.METRICS_CONSUMER, Role.SUPERVISOR, Role.PRIVACY_OFFICER)
]
Period = Annotated[
    str | None,
    Query(description="all, YYYY, YYYY-MM or YYYY-MM-DD (UTC); instead of start/end"),
]
Start = Annotated[
    BoundedDatetime | None, Query(description="on or after (UTC; rounded down to the day)")
]
End = Annotated[BoundedDatetime | None, Query(description="before (UTC; rounded up to the day)")]
Format = Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")]
County = Annotated[str | None, Query(description="county FIPS code, e.g. 29019")]


def _window(period: str | None, start: datetime | None, end: datetime | None) -> Window:
    try:
        return window_from(period, start, end)
    except WindowError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


def _county(county: str | None) -> str | None:
    if county is not None and county not in MISSOURI_COUNTIES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "not a Missouri county code")
    return county


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _flatten(prefix: str, value: Any, rows: list[list[Any]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows)
    else:
        metric, _, key = prefix.rpartition(".")
        rows.append([metric, key, "" if value is None else value])


def _csv(header: list[str], rows: list[list[Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _statewide_response(body: dict[str, Any], as_csv: bool) -> Response:
    if not as_csv:
        return JSONResponse(body)
    rows: list[list[Any]] = []
    _flatten("", body, rows)
    return _csv(["metric", "key", "value"], rows, "statewide")


def _queries(request: Request) -> MetricsQueries:
    queries: MetricsQueries = request.app.state.queries
    return queries


@router.get("/metrics/statewide", response_model=None)
async def statewide(
    request: Request,
    _: MetricsReader,
    period: Period = None,
    start: Start = None,
    end: End = None,
    county: County = None,
    fmt: Format = None,
) -> Response:
    """Referrals (by source, need, month), unique people, repeat involvement, the lifecycle
    funnel, days to first contact, follow-ups and their outcomes, trainings and officers."""
    window = _window(period, start, end)
    body = await _queries(request).statewide(window, _county(county))
    return _statewide_response(body, _wants_csv(request, fmt))


@router.get("/public/statewide", response_model=None, tags=["public"])
async def public_statewide(
    request: Request,
    period: Period = None,
    start: Start = None,
    end: End = None,
    county: County = None,
    fmt: Format = None,
) -> Response:
    """The suppressed statewide view for the public dashboard: no token needed."""
    window = _window(period, start, end)
    body = await _queries(request).statewide(window, _county(county))
    return _statewide_response(body, _wants_csv(request, fmt))


@router.get("/metrics/{dimension}", response_model=None)
async def by_dimension(
    request: Request,
    _: MetricsReader,
    dimension: Annotated[str, Path(description=", ".join(METRIC_DIMENSIONS))],
    period: Period = None,
    start: Start = None,
    end: End = None,
    fmt: Format = None,
) -> Response:
    """Referrals and unique people per value of a dimension (or sessions and officers per
    course, training county or officers' agency)."""
    if dimension not in METRIC_DIMENSIONS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown dimension; one of {', '.join(METRIC_DIMENSIONS)}"
        )
    body = await _queries(request).dimension(_window(period, start, end), dimension)
    if not _wants_csv(request, fmt):
        return JSONResponse(body)
    header = list(body["rows"][0]) if body["rows"] else ["key"]
    return _csv(header, [[row.get(h, "") for h in header] for row in body["rows"]], dimension)
