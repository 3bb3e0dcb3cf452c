"""Statewide metrics API under /api/v1: aggregates only, never a person; JSON or CSV.

Every count of people or referrals is published with small-cell suppression. The token-free
public endpoint (the dashboard's source) and metrics consumers get the publication grid: periods
that have ended, made of whole fiscal quarters, each number suppressed once across every table
(domain/grid.py, docs/adr/0009-publication-grid.md), so no small count can be worked out by
subtracting two answers. Roles that may see records (supervisors, privacy officers) may also ask
for any window (start/end, a month, a day, as_of any day), suppressed table by table."""

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.envelope import BoundedDate, BoundedDatetime
from cmhl_reporting.application.grid import PublicationGrid
from cmhl_reporting.application.queries import METRIC_DIMENSIONS, MetricsQueries
from cmhl_reporting.domain.window import Window, WindowError, window_from
from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["metrics"])

MetricsReader = Annotated[
    Principal, require_any(Role.METRICS_CONSUMER, Role.SUPERVISOR, Role.PRIVACY_OFFICER)
]
Period = Annotated[
    str | None,
    Query(
        description="all, fyYYYY (July 1 of YYYY-1 to June 30 of YYYY), fyYYYY-qN, YYYY, and for "
        "roles that may see records also YYYY-MM or YYYY-MM-DD; days in the program's time zone"
    ),
]
Start = Annotated[
    BoundedDatetime | None,
    Query(
        description="on or after (rounded down to the program's day; roles that may see records)"
    ),
]
End = Annotated[
    BoundedDatetime | None,
    Query(description="before (rounded up to the program's day; roles that may see records)"),
]
AsOf = Annotated[
    BoundedDate | None,
    Query(
        description="cumulative totals up to and including this day: a fiscal quarter's last "
        "day on the publication grid, any day that has begun for roles that may see records"
    ),
]
Format = Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")]
County = Annotated[str | None, Query(description="county FIPS code, e.g. 29019")]


def may_see_records(principal: Principal | None) -> bool:
    """Supervisors and privacy officers may see records: they may ask for any window."""
    return principal is not None and bool(principal.roles & {Role.SUPERVISOR, Role.PRIVACY_OFFICER})


def free_window(
    request: Request,
    period: str | None,
    start: datetime | None,
    end: datetime | None,
    as_of: date | None,
) -> Window:
    grid: PublicationGrid = request.app.state.grid
    try:
        return window_from(
            period, start, end, request.app.state.zone, as_of=as_of, today=grid.today()
        )
    except WindowError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


def on_grid(start: datetime | None, end: datetime | None) -> None:
    if start is not None or end is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "start/end are for roles that may see records; "
            "on the publication grid ask for period=all, fyYYYY or fyYYYY-qN, or as_of a "
            "fiscal quarter's last day",
        )


def unprocessable(exc: WindowError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


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


def publication_grid(request: Request) -> PublicationGrid:
    grid: PublicationGrid = request.app.state.grid
    return grid


async def _statewide_body(
    request: Request,
    principal: Principal | None,
    period: str | None,
    start: datetime | None,
    end: datetime | None,
    as_of: date | None,
    county: str | None,
) -> dict[str, Any]:
    county = _county(county)
    if may_see_records(principal):
        window = free_window(request, period, start, end, as_of)
        return await _queries(request).statewide(window, county)
    on_grid(start, end)
    try:
        return await publication_grid(request).statewide(period, as_of, county)
    except WindowError as exc:
        raise unprocessable(exc) from exc


@router.get("/metrics/statewide", response_model=None)
async def statewide(
    request: Request,
    principal: MetricsReader,
    period: Period = None,
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
    county: County = None,
    fmt: Format = None,
) -> Response:
    """Referrals (by source, need, quarter or month), unique people, repeat involvement, the
    lifecycle funnel, days to first contact, follow-ups and their outcomes, trainings and
    officers."""
    body = await _statewide_body(request, principal, period, start, end, as_of, county)
    return _statewide_response(body, _wants_csv(request, fmt))


@router.get("/public/statewide", response_model=None, tags=["public"])
async def public_statewide(
    request: Request,
    period: Period = None,
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
    county: County = None,
    fmt: Format = None,
) -> Response:
    """The statewide view on the publication grid for the public dashboard: no token needed."""
    body = await _statewide_body(request, None, period, start, end, as_of, county)
    return _statewide_response(body, _wants_csv(request, fmt))


@router.get("/public/counties", tags=["public"])
async def public_counties(
    request: Request, period: Period = None, as_of: AsOf = None
) -> JSONResponse:
    """Referrals per county on the publication grid, each with the county's population and its
    rate per 10,000 residents (none where the count is suppressed): the dashboard's map."""
    try:
        return JSONResponse(await publication_grid(request).counties(period, as_of))
    except WindowError as exc:
        raise unprocessable(exc) from exc


@router.get("/public/placement", tags=["public"])
async def public_placement(
    request: Request, period: Period = None, as_of: AsOf = None
) -> JSONResponse:
    """Placement requests and how they ended, on the publication grid (the same numbers as
    /metrics/placement gives an analyst, without the facilities' bed reports)."""
    try:
        body, _ = await publication_grid(request).placement(period, as_of)
    except WindowError as exc:
        raise unprocessable(exc) from exc
    return JSONResponse(body)


@router.get("/metrics/{dimension}", response_model=None)
async def by_dimension(
    request: Request,
    principal: MetricsReader,
    dimension: Annotated[str, Path(description=", ".join(METRIC_DIMENSIONS))],
    period: Period = None,
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
    fmt: Format = None,
) -> Response:
    """Referrals and unique people per value of a dimension (or sessions and officers per
    course, training county or officers' agency)."""
    if dimension not in METRIC_DIMENSIONS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown dimension; one of {', '.join(METRIC_DIMENSIONS)}"
        )
    if may_see_records(principal):
        window = free_window(request, period, start, end, as_of)
        body = await _queries(request).dimension(window, dimension)
    elif dimension == "month":
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "months are not on the publication grid: by_quarter in /metrics/statewide gives "
            "each fiscal quarter; months are for roles that may see records",
        )
    else:
        on_grid(start, end)
        try:
            body = await publication_grid(request).dimension(period, as_of, dimension)
        except WindowError as exc:
            raise unprocessable(exc) from exc
    if not _wants_csv(request, fmt):
        return JSONResponse(body)
    header = list(body["rows"][0]) if body["rows"] else ["key"]
    return _csv(header, [[row.get(h, "") for h in header] for row in body["rows"]], dimension)
