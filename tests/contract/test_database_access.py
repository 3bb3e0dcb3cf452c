"""Each service's database user (deploy/database-access.toml, ADR 0011) matches the service as
built: the database its settings name, and the audit access its code uses (a service that writes
audit entries may append; one that reads a person's accounting of disclosures may read)."""

import json
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from cmhl_followup.config import FollowUpSettings
from cmhl_notifications.config import NotificationSettings
from cmhl_placement.config import PlacementSettings
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.database_access import load, render_plan
from cmhl_training.config import TrainingSettings
from cmhl_workspace.config import WorkspaceSettings

REPO = Path(__file__).resolve().parents[2]
USERS = {u.name: u for u in load(REPO / "deploy" / "database-access.toml")}
SETTINGS: dict[str, type[BaseSettings]] = {
    "referral": ReferralSettings,
    "followup": FollowUpSettings,
    "training": TrainingSettings,
    "reporting": ReportingSettings,
    "placement": PlacementSettings,
    "notifications": NotificationSettings,
    "workspace": WorkspaceSettings,
}


def _source(service: str) -> str:
    return "\n".join(
        path.read_text() for path in sorted((REPO / "services" / service / "src").rglob("*.py"))
    )


def test_every_service_with_a_database_has_a_user_of_its_own() -> None:
    services = {path.name for path in (REPO / "services").iterdir() if (path / "src").is_dir()}
    assert services == set(SETTINGS), "a new service: add its settings here"
    with_database = {name for name, cls in SETTINGS.items() if "mongo_uri" in cls.model_fields}
    assert with_database == set(USERS)


@pytest.mark.parametrize("service", SETTINGS)
def test_the_user_owns_the_database_the_service_uses(service: str) -> None:
    assert SETTINGS[service].model_fields["mongo_database"].default == USERS[service].database


@pytest.mark.parametrize("service", SETTINGS)
def test_the_user_may_do_on_the_audit_log_exactly_what_the_service_does(service: str) -> None:
    source = _source(service)
    user = USERS[service]
    assert user.may_append_audit == ("MongoAuditLog(" in source), (
        f"{service}: audit access must be 'append' exactly when it writes audit entries"
    )
    assert user.may_read_audit == (".for_person(" in source), (
        f"{service}: audit access must be 'append-and-read' exactly when it reads an accounting"
    )


def test_the_kubernetes_plan_is_generated_from_the_declarations() -> None:
    plan = REPO / "deploy" / "k8s" / "base" / "database" / "database-access.json"
    assert json.loads(plan.read_text()) == json.loads(render_plan(list(USERS.values()))), (
        "regenerate: uv run python -m cmhl_servicekit.database_access plan "
        "> deploy/k8s/base/database/database-access.json"
    )
