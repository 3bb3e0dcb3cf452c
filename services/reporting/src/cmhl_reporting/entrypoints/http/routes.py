"""Statewide metrics API under /api/v1: aggregates only, never a person."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["metrics"])

MetricsReader = Annotated[
    Principal, require_any(Role.METRICS_CONSUMER, Role.SUPERVISOR, Role.PRIVACY_OFFICER)
]


@router.get("/metrics/statewide")
async def statewide(
    request: Request,
    _: MetricsReader,
    start: Annotated[datetime | None, Query(description="referrals on or after (UTC)")] = None,
    end: Annotated[datetime | None, Query(description="referrals before (UTC)")] = None,
) -> dict[str, Any]:
    """Statewide totals: referrals by source and need, follow-ups, trainings and officers."""
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "start and end need a time zone, e.g. 2018-01-01T00:00:00Z",
            )
    if start and end and start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start must be before end")
    metrics: dict[str, Any] = await request.app.state.queries.statewide(start, end)
    metrics["as_of"] = datetime.now(UTC).isoformat()
    return metrics
