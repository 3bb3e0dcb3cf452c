"""Consultations and barriers by county and fiscal year under /api/v1: aggregates only,
suppressed so that no count from 1 to 10 is shown or can be worked out (domain/activity.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from cmhl_contracts.activity import LATE_ENTRY_DAYS
from cmhl_contracts.envelope import EARLIEST_YEAR, LATEST_YEAR
from cmhl_reporting.application.activity import ActivityQueries, is_published, published_from
from cmhl_reporting.entrypoints.http.routes import MetricsReader, may_see_records, publication_grid

router = APIRouter(prefix="/api/v1", tags=["metrics"])

FiscalYear = Annotated[
    int,
    Query(
        ge=EARLIEST_YEAR + 1,
        le=LATEST_YEAR,
        description="Missouri fiscal year YYYY: July 1 of YYYY-1 to June 30 of YYYY",
    ),
]


def _queries(request: Request) -> ActivityQueries:
    queries: ActivityQueries = request.app.state.activity
    return queries


def _ended_only(request: Request, year: int) -> None:
    today = publication_grid(request).today()
    if not is_published(year, today):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"fiscal year {year} is published from {published_from(year)}: once it has ended "
            f"and the {LATE_ENTRY_DAYS} days records may be entered late have passed (a year "
            "still open would give away each record as it arrives); roles that may see records "
            "may ask for it now",
        )


@router.get("/metrics/activity")
async def activity(
    request: Request, principal: MetricsReader, fiscal_year: FiscalYear
) -> dict[str, Any]:
    """Consultations by county and topic, barriers by county and kind, for one fiscal year.
    Metrics consumers get fiscal years that ended more than the late-entry days ago;
    supervisors and privacy officers any. Every answer is suppressed the same way."""
    if not may_see_records(principal):
        _ended_only(request, fiscal_year)
    return await _queries(request).published(fiscal_year)


@router.get("/public/activity", tags=["public"])
async def public_activity(request: Request, fiscal_year: FiscalYear) -> dict[str, Any]:
    """The same table for a published fiscal year, for the public dashboard: no token needed."""
    _ended_only(request, fiscal_year)
    return await _queries(request).published(fiscal_year)
