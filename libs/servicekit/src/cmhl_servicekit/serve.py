"""Runs a service's HTTP app with uvicorn, logging in JSON."""

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from cmhl_servicekit.logging import configure_logging
from cmhl_servicekit.settings import HttpSettings, S, load_settings
from cmhl_servicekit.tracing import configure_tracing


def serve(app: FastAPI, settings: HttpSettings, service: str) -> None:
    configure_logging(service, settings.log_level)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def run_service(settings_class: type[S], build: Callable[[S], FastAPI], service: str) -> None:
    """`python -m cmhl_<service>`: settings from the environment, then serve."""
    settings = load_settings(settings_class)
    # Before `build`: the broker and the app are instrumented as they are built.
    configure_tracing(service, settings.otel_exporter_otlp_endpoint)
    serve(build(settings), settings, service)
