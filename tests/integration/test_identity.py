"""Sign-in through the stack's real OpenID Connect provider (Keycloak, realm deploy/local/keycloak):
a person with a second factor, the tokens every service accepts and those all refuse, a key
rotated in the provider, and an agency's client confined to its agency."""

import asyncio
import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import struct
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_placement.bootstrap import build as build_placement
from cmhl_placement.config import PlacementSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.oidc import SignIn, SignInRefused
from cmhl_servicekit.testing import (
    TestIdentityProvider,
    agency_bearer,
    eventually,
    identity_provider,
    infra_settings,
    running_app,
)
from cmhl_training.bootstrap import build as build_training
from cmhl_training.config import TrainingSettings

pytestmark = pytest.mark.integration

WORKSPACE = "cmhl-workspace"
# The workspace's sign-in return (any port on the loopback address, RFC 8252).
REDIRECT = "http://127.0.0.1:8006/auth/callback"
# One read per service that a liaison who also supervises may make.
READS = {
    "referral": "/api/v1/referrals",
    "followup": "/api/v1/follow-ups",
    "training": "/api/v1/training-sessions",
    "reporting": "/api/v1/metrics/statewide",
    "placement": "/api/v1/facilities",
}


def totp(secret: str, at: float, step: int = 30) -> str:
    """RFC 6238 with HMAC-SHA1 and 6 digits, the realm's OTP policy; Keycloak keys the HMAC with
    the secret's own bytes."""
    digest = hmac.new(secret.encode(), struct.pack(">Q", int(at // step)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def form_action(page: str) -> str:
    match = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert match, page[:2000]
    return html.unescape(match.group(1))


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page
    )
    assert match, f"no {name} on the page"
    return html.unescape(match.group(1))


class Browser:
    """Keeps Keycloak's sign-in cookies as a browser does. They are `Secure`, which a browser
    sends to 127.0.0.1 (a secure context) and httpx's cookie jar sends only over https, so they
    are carried by hand."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._cookies: dict[str, str] = {}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        cookie = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
        answer = await self._http.request(method, url, headers={"Cookie": cookie}, **kwargs)
        self._http.cookies.clear()
        for header in answer.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self._cookies[name] = rest.split(";", 1)[0]
        location = answer.headers.get("location", "")
        if answer.status_code in (302, 303) and not location.startswith(REDIRECT):
            return await self.request("GET", location)  # within Keycloak: the next page
        return answer


async def browser_sign_in(
    issuer: str, username: str, password: str, second_factor: Any
) -> dict[str, Any]:
    """The workspace's sign-in as a browser does it: authorization code with PKCE, the login
    form, then whatever the second factor asks (`second_factor(page) -> form fields`)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
        browser = Browser(http)
        login = await browser.request(
            "GET",
            f"{issuer}/protocol/openid-connect/auth",
            params={
                "client_id": WORKSPACE,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "openid",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert login.status_code == 200, login.text[:500]
        page = await browser.request(
            "POST", form_action(login.text), data={"username": username, "password": password}
        )
        assert page.status_code == 200, "a second factor is asked for before any code"
        answered = await browser.request(
            "POST", form_action(page.text), data=second_factor(page.text)
        )
        assert answered.status_code == 302, answered.text[:1000]
        code = httpx.URL(answered.headers["location"]).params["code"]
        tokens = await http.post(
            f"{issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "authorization_code",
                "client_id": WORKSPACE,
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
        assert tokens.status_code == 200, tokens.text
        return dict(tokens.json())


@pytest.fixture
async def services(kafka_bootstrap: str, mongo_uri: str) -> AsyncIterator[dict[str, Any]]:
    # A small clock skew, so the expired-token case waits seconds, not half a minute.
    def infra() -> dict[str, Any]:
        # Each service its own database, as deployed.
        return infra_settings(kafka_bootstrap, mongo_uri) | {"auth_clock_skew_seconds": 2}

    pseudonym_key = "test-pseudonym-key"
    apps = {
        "referral": build_referral(
            ReferralSettings(
                **infra(),
                pseudonym_key=pseudonym_key,
                encryption_key=base64.b64encode(b"k" * 32).decode(),
            )
        ),
        "followup": build_followup(FollowUpSettings(**infra(), due_scan_seconds=3600)),
        "training": build_training(TrainingSettings(**infra(), pseudonym_key=pseudonym_key)),
        "reporting": build_reporting(ReportingSettings(**infra())),
        "placement": build_placement(
            PlacementSettings(
                **infra(),
                timer_scan_seconds=3600,
                referral_url="http://referral.test",
                seed_demo_facilities=True,  # the facility whose client is rotated below
            )
        ),
    }
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(running_app(app, from_now=True))
            for name, app in apps.items()
        }
        yield clients


def new_staff_member(*roles: str) -> tuple[str, str]:
    """A user as a program admin adds one: no exemption, so the realm's defaults apply."""
    provider = identity_provider()
    username = f"staff-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(16)
    created = provider.admin_api(
        "POST",
        "/users",
        json={
            "username": username,
            "enabled": True,
            "attributes": {"staff_id": [username], "cmhc": ["cmhc-01"]},
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.headers["location"].rsplit("/", 1)[1]
    grant = [provider.admin_api("GET", f"/roles/{role}").json() for role in roles]
    provider.admin_api("POST", f"/users/{user_id}/role-mappings/realm", json=grant)
    return username, password


async def test_staff_sign_in_with_a_second_factor_and_every_service_accepts_the_token(
    services: dict[str, httpx.AsyncClient],
) -> None:
    provider = identity_provider()
    # A liaison who also supervises: every service has a read for one of the two roles.
    username, password = new_staff_member("liaison", "supervisor")
    # Without the second factor set up, the password alone gets no token, not even through the
    # password-grant test client.
    with pytest.raises(Exception, match="not fully set up"):
        SignIn(provider.issuer, provider.client_id, username, password).token()

    enrolled: dict[str, str] = {}

    def set_up_totp(page: str) -> dict[str, str]:
        assert 'name="totp"' in page, "the first sign-in sets up an authenticator app"
        enrolled["secret"] = hidden(page, "totpSecret")
        return {
            "totp": totp(enrolled["secret"], time.time()),
            "totpSecret": enrolled["secret"],
            "userLabel": "phone",
        }

    started = time.monotonic()
    tokens = await browser_sign_in(provider.issuer, username, password, set_up_totp)
    sign_in_seconds = time.monotonic() - started
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "cmhl"
    assert claims["staff_id"] == username
    assert "supervisor" in claims["roles"]
    assert "refresh_token" in tokens
    assert tokens["expires_in"] <= 300, "short-lived access tokens"
    assert tokens["refresh_expires_in"] <= 900, "a 15-minute idle session"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for service, path in READS.items():
        answer = await services[service].get(path, headers=headers)
        assert answer.status_code == 200, (service, answer.status_code, answer.text[:300])
    print(f"[identity] browser sign-in with TOTP set-up: {sign_in_seconds:.2f}s")  # noqa: T201

    # The next sign-in asks for a code: a wrong one is refused, the right one signs in. (A code
    # is used once: the next period's code, which the look-ahead window accepts.)
    def wrong_code(page: str) -> dict[str, str]:
        assert 'name="otp"' in page
        return {"otp": "000000" if totp(enrolled["secret"], time.time()) != "000000" else "1"}

    with pytest.raises(AssertionError):
        await browser_sign_in(provider.issuer, username, password, wrong_code)

    def right_code(page: str) -> dict[str, str]:
        return {"otp": totp(enrolled["secret"], time.time() + 30)}

    again = await browser_sign_in(provider.issuer, username, password, right_code)
    async with httpx.AsyncClient() as http:
        refreshed = await http.post(
            f"{provider.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "refresh_token",
                "client_id": WORKSPACE,
                "refresh_token": again["refresh_token"],
            },
        )
    assert refreshed.status_code == 200, refreshed.text
    renewed = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await services["referral"].get(READS["referral"], headers=renewed)).status_code == 200


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
    )


def _encode(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def forgeries(real: str, public_pem: bytes) -> dict[str, str]:
    header, claims = _segments(real)
    signature = real.rsplit(".", 1)[1]
    raised = claims | {"roles": ["supervisor", "privacy_officer"]}
    hs_header = header | {"alg": "HS256"}
    signing_input = f"{_encode(hs_header)}.{_encode(claims)}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    return {
        "tampered": f"{_encode(header)}.{_encode(raised)}.{signature}",
        "alg none": f"{_encode(header | {'alg': 'none'})}.{_encode(claims)}.",
        "HS256 with the public key": f"{signing_input.decode()}.{mac.rstrip(b'=').decode()}",
    }


async def test_forged_expired_and_foreign_tokens_are_refused_by_every_service(
    services: dict[str, httpx.AsyncClient],
) -> None:
    provider = identity_provider()
    supervisor = provider.person("supervisor-77", (Role.SUPERVISOR,), "cmhc-01")
    real = supervisor.token()
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(f"{provider.issuer}/protocol/openid-connect/certs")).json()
    kid = _segments(real)[0]["kid"]
    public = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bad = forgeries(real, pem)
    # Another audience: a client of the same realm without the services' scope.
    foreign = provider.machine("agency", "audience-check")
    provider.admin_api(
        "PUT",
        f"/clients/{_client_uuid(foreign.client_id)}",
        json={"clientId": foreign.client_id, "defaultClientScopes": []},
    )
    _remove_default_scope(foreign.client_id, "cmhl-api")
    bad["another audience"] = SignIn(
        provider.issuer, foreign.client_id, client_secret=foreign.client_secret
    ).token()
    bad["expired"] = await short_lived_token(provider)
    for what, token in bad.items():
        for service, path in READS.items():
            answer = await services[service].get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, (what, service, answer.status_code)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert token not in answer.text
    assert (
        await services["referral"].get(
            READS["referral"], headers={"Authorization": f"Bearer {real}"}
        )
    ).status_code == 200


def _client_uuid(client_id: str) -> str:
    provider = identity_provider()
    return str(
        provider.admin_api("GET", "/clients", params={"clientId": client_id}).json()[0]["id"]
    )


def _remove_default_scope(client_id: str, scope: str) -> None:
    provider = identity_provider()
    scopes = provider.admin_api("GET", "/client-scopes").json()
    scope_id = next(s["id"] for s in scopes if s["name"] == scope)
    provider.admin_api(
        "DELETE", f"/clients/{_client_uuid(client_id)}/default-client-scopes/{scope_id}"
    )


async def short_lived_token(provider: TestIdentityProvider) -> str:
    """A token of a client whose tokens live a second, once it has expired beyond the services'
    clock skew."""
    client = provider.machine("agency", "short-lived")
    provider.admin_api(
        "PUT",
        f"/clients/{_client_uuid(client.client_id)}",
        json={"clientId": client.client_id, "attributes": {"access.token.lifespan": "1"}},
    )
    token = SignIn(provider.issuer, client.client_id, client_secret=client.client_secret).token()
    exp = _segments(token)[1]["exp"]
    wait = exp + 3 - time.time()  # past the services' 2-second clock skew
    if wait > 0:
        await asyncio.sleep(wait)  # the services under test keep running meanwhile
    return token


async def test_a_key_rotated_in_the_provider_is_followed_without_a_restart(
    services: dict[str, httpx.AsyncClient],
) -> None:
    provider = identity_provider()
    liaison = provider.person("lead-rotation", (Role.LIAISON, Role.SUPERVISOR), "cmhc-01")
    before = liaison.token()
    for service, path in READS.items():  # every service caches the current key
        headers = {"Authorization": f"Bearer {before}"}
        assert (await services[service].get(path, headers=headers)).status_code == 200
    realm_id = provider.admin_api("GET", "").json()["id"]
    added = provider.admin_api(
        "POST",
        "/components",
        json={
            "name": f"rotated-{uuid.uuid4().hex[:6]}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm_id,
            "config": {"priority": ["1000"], "keySize": ["2048"], "algorithm": ["RS256"]},
        },
    )
    assert added.status_code == 201, added.text
    component = added.headers["location"].rsplit("/", 1)[1]
    try:
        fresh = SignIn(provider.issuer, provider.client_id, liaison.username, liaison.password)
        after = fresh.token()
        assert _segments(after)[0]["kid"] != _segments(before)[0]["kid"], "signed by the new key"

        async def accepted_everywhere() -> bool:
            for service, path in READS.items():
                headers = {"Authorization": f"Bearer {after}"}
                if (await services[service].get(path, headers=headers)).status_code != 200:
                    return False
            return True

        # Within the refetch floor (5 s) of the last fetch a service still says 401; after it,
        # the unknown key id makes it fetch the new set.
        await eventually(accepted_everywhere, timeout=20)
    finally:
        provider.admin_api("DELETE", f"/components/{component}")


async def test_an_agency_client_reaches_only_its_agency(
    services: dict[str, httpx.AsyncClient],
) -> None:
    referrals = services["referral"]
    run = uuid.uuid4().hex[:8]

    def submission(reference: str, agency: str) -> dict[str, Any]:
        return {
            "agency": {"agency_id": agency, "source": "sheriff"},
            "agency_reference": reference,
            "county_fips": "29019",
            "primary_need": "behavioral_needs",
            "person_location": "community",
            "person": {"given_name": "Al", "family_name": "Fox", "birth_date": "1975-05-05"},
            "referred_at": "2026-11-01T10:00:00Z",
        }

    boone = agency_bearer(f"boone-so-{run}")
    cole = agency_bearer(f"cole-so-{run}")
    url = "/api/v1/agency/referrals"
    own = await referrals.post(
        url, headers=boone, json={"submissions": [submission(f"{run}-1", f"boone-so-{run}")]}
    )
    assert own.status_code == 200, own.text
    assert own.json()["created"] == 1
    for_another = await referrals.post(
        url, headers=boone, json={"submissions": [submission(f"{run}-2", f"cole-so-{run}")]}
    )
    assert for_another.status_code == 403
    # The other agency resubmitting boone's reference under its own name gets its own record,
    # never boone's referral.
    theirs = await referrals.post(
        url, headers=cole, json={"submissions": [submission(f"{run}-1", f"cole-so-{run}")]}
    )
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["results"][0]["referral_id"] != own.json()["results"][0]["referral_id"]


async def test_a_machine_client_is_rotated_and_revoked_without_a_service_restart(
    services: dict[str, httpx.AsyncClient],
) -> None:
    """What a program admin does in the provider: a new secret, then the client disabled. The
    services, running throughout, need nothing."""
    provider = identity_provider()
    facility = "fac-boone-riverbend"
    client = provider.machine("facility", facility)
    internal_id = _client_uuid(client.client_id)
    url = f"/api/v1/facilities/{facility}"
    headers = {"Authorization": f"Bearer {client.token()}"}
    assert (await services["placement"].get(url, headers=headers)).status_code in (200, 403)
    rotated = provider.admin_api("POST", f"/clients/{internal_id}/client-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["value"]
    with pytest.raises(SignInRefused):
        SignIn(provider.issuer, client.client_id, client_secret=client.client_secret).token()
    renewed = SignIn(provider.issuer, client.client_id, client_secret=new_secret)
    body = {"units": [{"unit_type": "adult_acute", "available": 3}], "reported_by": "test"}
    put = await services["placement"].put(
        f"{url}/availability", json=body, headers=renewed.headers()
    )
    assert put.status_code == 200, put.text
    provider.admin_api(
        "PUT", f"/clients/{internal_id}", json={"clientId": client.client_id, "enabled": False}
    ).raise_for_status()
    with pytest.raises(SignInRefused):
        SignIn(provider.issuer, client.client_id, client_secret=new_secret).token()
    provider.admin_api(
        "PUT", f"/clients/{internal_id}", json={"clientId": client.client_id, "enabled": True}
    ).raise_for_status()
    # The test provider's cached sign-in for this facility is stale now: forget it.
    provider.forget(("machine", "facility", facility))
