"""How use-case errors become HTTP answers: the rule broken is named, never a 500."""

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from cmhl_training.application.ports import ConcurrentChange
from cmhl_training.application.service import NotAllowed, NotFound
from cmhl_training.domain.session import InvalidSession, SessionConflict


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidSession)
    return JSONResponse(
        {"detail": str(exc), "rule": exc.rule.value}, status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SessionConflict)
    return JSONResponse({"detail": str(exc), "rule": exc.rule.value}, status.HTTP_409_CONFLICT)


async def _concurrent(_: Request, __: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "the session changed meanwhile; read it and try again", "rule": "concurrent"},
        status.HTTP_409_CONFLICT,
    )


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


async def _not_allowed(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_403_FORBIDDEN)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InvalidSession, _invalid)
    app.add_exception_handler(SessionConflict, _conflict)
    app.add_exception_handler(ConcurrentChange, _concurrent)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(NotAllowed, _not_allowed)
