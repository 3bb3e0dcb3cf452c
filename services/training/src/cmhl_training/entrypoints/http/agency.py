"""Agencies read their own officers' training records with a token of their agency's client, by
the officer ids they issued; the token decides the agency, so no other agency's officer can be
asked for."""

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cmhl_servicekit.auth import CurrentAgency
from cmhl_training.application.service import Actor, TrainingService
from cmhl_training.entrypoints.http.certificate import render_certificate
from cmhl_training.entrypoints.http.schemas import OfficerRecordPublic, OfficerRef

router = APIRouter(prefix="/api/v1/agency", tags=["agency access"])


def _actor(request: Request, agency_id: str) -> Actor:
    return Actor(None, agency_id, request.client.host if request.client else None)


@router.get("/officers/{officer_ref}/training")
async def officer_record(
    officer_ref: OfficerRef, request: Request, agency_id: CurrentAgency
) -> OfficerRecordPublic:
    """Your officer's completed trainings and POST hours by year and category (audited)."""
    service: TrainingService = request.app.state.trainings
    record = await service.agency_officer_record(officer_ref, _actor(request, agency_id))
    return OfficerRecordPublic.of(record)


@router.get(
    "/officers/{officer_ref}/certificates/{session_id}",
    response_class=HTMLResponse,
    responses={404: {"description": "no completed session lists your officer"}},
)
async def certificate(
    officer_ref: OfficerRef, session_id: uuid.UUID, request: Request, agency_id: CurrentAgency
) -> HTMLResponse:
    """Your officer's printable certificate of completion for one session."""
    service: TrainingService = request.app.state.trainings
    found = await service.agency_certificate(
        str(session_id), officer_ref, _actor(request, agency_id)
    )
    return HTMLResponse(render_certificate(found))
