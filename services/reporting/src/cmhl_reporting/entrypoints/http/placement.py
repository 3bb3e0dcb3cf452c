"""Placement metrics under /api/v1/metrics/placement: aggregates of placement requests (people,
suppressed) and bed-availability freshness by facility (facility data, not suppressed).
Metrics consumers get the publication grid's numbers; roles that may see records any window."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cmhl_reporting.application.placement import PlacementQueries
from cmhl_reporting.domain.window import WindowError
from cmhl_reporting.entrypoints.http.routes import (
    AsOf,
    End,
    MetricsReader,
    Period,
    Start,
    free_window,
    may_see_records,
    on_grid,
    publication_grid,
    unprocessable,
)

router = APIRouter(prefix="/api/v1", tags=["metrics"])


@router.get("/metrics/placement")
async def placement(
    request: Request,
    principal: MetricsReader,
    period: Period = None,
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
) -> JSONResponse:
    """Requests, attempts, outcomes; median hours from detention to placement; requests past
    96 hours; facilities contacted per placement; placements out of the person's region; and
    each facility's latest bed report, its age, and its updates and stale reminders."""
    queries: PlacementQueries = request.app.state.placement
    if may_see_records(principal):
        window = free_window(request, period, start, end, as_of)
        return JSONResponse(await queries.placement(window))
    on_grid(start, end)
    try:
        body, chosen = await publication_grid(request).placement(period, as_of)
    except WindowError as exc:
        raise unprocessable(exc) from exc
    body["bed_availability"] = await queries.bed_availability(chosen.window)
    return JSONResponse(body)
