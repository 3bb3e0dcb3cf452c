"""Placement metrics under /api/v1/metrics/placement: aggregates of placement requests (people,
suppressed) and bed-availability freshness by facility (facility data, not suppressed)."""

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from cmhl_reporting.application.placement import PlacementQueries
from cmhl_reporting.domain.window import WindowError, window_from
from cmhl_reporting.entrypoints.http.routes import End, MetricsReader, Period, Start

router = APIRouter(prefix="/api/v1", tags=["metrics"])


@router.get("/metrics/placement")
async def placement(
    request: Request,
    _: MetricsReader,
    period: Period = None,
    start: Start = None,
    end: End = None,
) -> JSONResponse:
    """Requests, attempts, outcomes; median hours from detention to placement; requests past
    96 hours; facilities contacted per placement; placements out of the person's region; and
    each facility's latest bed report, its age, and its updates and stale reminders."""
    try:
        window = window_from(period, start, end)
    except WindowError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    queries: PlacementQueries = request.app.state.placement
    return JSONResponse(await queries.placement(window))
