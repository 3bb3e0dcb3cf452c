"""The realm file is the identity provider's configuration as code: its policy, its clients
and demo users must stay what the services and the docs say."""

import json
from pathlib import Path
from typing import Any

import pytest

from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_referral.domain.assignment import CMHC_OF_LIAISON
from cmhl_servicekit.auth import Role

REALM_FILE = Path(__file__).resolve().parents[2] / "deploy/local/keycloak/cmhl-realm.json"


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return dict(json.loads(REALM_FILE.read_text()))


def test_the_realm_has_every_role_the_services_know(realm: dict[str, Any]) -> None:
    names = {role["name"] for role in realm["roles"]["realm"]}
    assert {str(role) for role in Role} <= names


def test_short_tokens_an_idle_logoff_and_a_second_factor(realm: dict[str, Any]) -> None:
    assert realm["accessTokenLifespan"] <= 300
    assert realm["ssoSessionIdleTimeout"] <= 900
    assert realm["bruteForceProtected"] is True
    actions = {a["alias"]: a for a in realm["requiredActions"]}
    assert actions["CONFIGURE_TOTP"]["defaultAction"] is True
    flows = {flow["alias"]: flow for flow in realm["authenticationFlows"]}
    assert realm["browserFlow"] in flows
    second = [e["authenticator"] for e in flows["cmhl second factor"]["authenticationExecutions"]]
    assert second == ["conditional-user-role", "auth-otp-form"]
    [condition] = realm["authenticatorConfig"]
    assert condition["config"] == {"condUserRole": "mfa_exempt", "negate": "true"}


def test_only_demo_users_skip_the_second_factor(realm: dict[str, Any]) -> None:
    for user in realm["users"]:
        assert "mfa_exempt" in user["realmRoles"]
        assert user["credentials"][0]["value"] == "${CMHL_DEMO_PASSWORD}", "no password in git"


def test_the_demo_liaisons_are_the_programs_liaisons(realm: dict[str, Any]) -> None:
    liaisons = {
        user["attributes"]["staff_id"][0]: user["attributes"]["cmhc"][0]
        for user in realm["users"]
        if "liaison" in user["realmRoles"]
    }
    assert liaisons == CMHC_OF_LIAISON


def test_one_client_per_demo_facility_and_no_secret_in_git(realm: dict[str, Any]) -> None:
    clients = {client["clientId"]: client for client in realm["clients"]}
    for facility in DEMO_FACILITIES:
        client = clients[f"facility-{facility.facility_id}"]
        assert client["serviceAccountsEnabled"] is True
        assert client["directAccessGrantsEnabled"] is False
        [mapper] = client["protocolMappers"]
        assert mapper["config"]["claim.value"] == facility.facility_id
    confidential = [c for c in realm["clients"] if not c.get("publicClient")]
    assert all(c["secret"].startswith("${") for c in confidential)
    assert clients["cmhl-workspace"]["attributes"]["pkce.code.challenge.method"] == "S256"
    assert clients["cmhl-workspace"]["directAccessGrantsEnabled"] is False
