"""Composition root of the reporting service."""

from typing import Any

from fastapi import FastAPI

from cmhl_reporting.adapters.mongo import MongoViewReader, MongoViewStore
from cmhl_reporting.adapters.placement import MongoFacilityStates
from cmhl_reporting.application.activity import ActivityQueries
from cmhl_reporting.application.grid import PublicationGrid
from cmhl_reporting.application.placement import FacilityFreshnessProjector, PlacementQueries
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.application.queries import MetricsQueries
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.entrypoints.http.activity import router as activity_router
from cmhl_reporting.entrypoints.http.annual import router as annual_router
from cmhl_reporting.entrypoints.http.dashboard import router as dashboard_router
from cmhl_reporting.entrypoints.http.placement import router as placement_router
from cmhl_reporting.entrypoints.http.routes import router as http_router
from cmhl_reporting.entrypoints.messaging.placement import build_facility_router
from cmhl_reporting.entrypoints.messaging.projections import build_router
from cmhl_servicekit.asyncapi import declare_dead_letter_publishers
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import dead_letter_sink, make_broker
from cmhl_servicekit.metrics import ServiceMetrics
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.runtime import Runtime

SERVICE = "reporting"


def build(settings: ReportingSettings, **_: Any) -> FastAPI:
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    projector = Projector(MongoViewStore(db), zone=settings.zone, projected=metrics.projected)
    broker.include_router(
        build_router(projector, dead_letter_sink(broker, metrics), settings.consumer_group_prefix)
    )
    facilities = MongoFacilityStates(db)
    broker.include_router(
        build_facility_router(
            FacilityFreshnessProjector(facilities),
            dead_letter_sink(broker, metrics),
            settings.consumer_group_prefix,
        )
    )
    declare_dead_letter_publishers(broker)
    runtime = Runtime(broker, client)
    reader = MongoViewReader(db, min_interval=settings.view_refresh_seconds)
    # Its background refresh ends before the database client closes under it.
    runtime.on_stop.append(reader.close)
    grid = PublicationGrid(reader, settings.zone, settings.grid_refresh_seconds)
    return create_app(
        title="CMHL reporting service",
        description="Statewide aggregate metrics projected from every service's events.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        # Before http_router: its /metrics/{dimension} would take /metrics/placement (and activity).
        routers=[activity_router, placement_router, http_router, dashboard_router, annual_router],
        state={"queries": MetricsQueries(reader), "reader": reader, "projector": projector}
        | {"placement": PlacementQueries(reader, facilities), "grid": grid, "zone": settings.zone}
        | {"activity": ActivityQueries(reader)},
    )
