"""Token checks against an issuer's published keys (unit level: the issuer's discovery document
and JWKS are served by an in-process transport; the integration tests use the real Keycloak)."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from cmhl_servicekit.auth import (
    ClaimNames,
    CurrentAgency,
    CurrentPrincipal,
    InvalidToken,
    IssuerKeys,
    IssuerUnavailable,
    OptionalFacility,
    Role,
    TokenSettings,
    TokenVerifier,
    require_any,
)

ISSUER = "https://idp.example/realms/cmhl"
FORGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeIssuer:
    """Signs tokens and serves its discovery document and JWKS; keys can be rotated."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.jwks_fetches = 0
        self.down = False
        self.rotate()

    def rotate(self) -> str:
        kid = f"key-{len(self.keys) + 1}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published.append(kid)
        return kid

    async def handler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # a network round trip: other requests run meanwhile
        if self.down:
            raise httpx.ConnectError("issuer down", request=request)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
        self.jwks_fetches += 1
        keys = []
        for kid in self.published:
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append(public | {"kid": kid, "use": "sig", "alg": "RS256"})
        # An encryption key in the set is never used to check a signature.
        return httpx.Response(200, json={"keys": [*keys, {"kty": "RSA", "use": "enc", "kid": "e"}]})

    def token(self, kid: str | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": "cmhl",
            "sub": "7d1c",
            "iat": now,
            "exp": now + 300,
            "azp": "cmhl-workspace",
            "staff_id": "liaison-01",
            "roles": ["liaison", "offline_access"],
            "cmhc": "cmhc-01",
        } | overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        kid = kid or self.published[-1]
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier_for(issuer: FakeIssuer, clock: Clock, **settings: Any) -> TokenVerifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler))
    keys = IssuerKeys(ISSUER, client=client, clock=clock)
    return TokenVerifier(TokenSettings(ISSUER, "cmhl", **settings), keys)


async def test_a_valid_token_gives_the_principal(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    principal = verifier.principal(await verifier.claims(issuer.token()))
    assert principal.subject == "liaison-01"
    assert principal.roles == {Role.LIAISON}  # offline_access is not a role here
    assert principal.cmhc_id == "cmhc-01"
    assert principal.client_id == "cmhl-workspace"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["supervisor"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _hs256_with_public_key(issuer: FakeIssuer) -> str:
    # The classic confusion attack: the issuer's public key used as an HMAC secret.
    kid = issuer.published[-1]
    pem = (
        issuer.keys[kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    payload = {"iss": ISSUER, "aud": "cmhl", "exp": int(time.time()) + 60, "roles": ["liaison"]}
    signing_input = b".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
        for part in (header, payload)
    )
    mac = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _unsigned(issuer: FakeIssuer) -> str:
    payload = {"iss": ISSUER, "aud": "cmhl", "exp": int(time.time()) + 60, "roles": ["liaison"]}
    return jwt.encode(payload, "", algorithm="none", headers={"kid": issuer.published[-1]})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: _tampered(i.token()), "invalid token"),
        (lambda i: i.token(exp=int(time.time()) - 120), "token expired"),
        (lambda i: i.token(nbf=int(time.time()) + 120), "token not valid yet"),
        (lambda i: i.token(aud="account"), "another audience"),
        (lambda i: i.token(iss="https://evil.example/realms/cmhl"), "another issuer"),
        (lambda i: i.token(exp=None), "invalid token"),
        (_unsigned, "only RS256"),
        (_hs256_with_public_key, "only RS256"),
        (lambda i: "not-a-token", "not a JWT"),
    ],
    ids=[
        "tampered",
        "expired",
        "not-yet",
        "audience",
        "issuer",
        "no-exp",
        "alg-none",
        "hs256",
        "junk",
    ],
)
async def test_bad_tokens_are_refused_naming_why(
    issuer: FakeIssuer, clock: Clock, make: Any, reason: str
) -> None:
    verifier = verifier_for(issuer, clock)
    with pytest.raises(InvalidToken, match=reason):
        await verifier.claims(make(issuer))


async def test_a_small_clock_skew_is_tolerated(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock, clock_skew=timedelta(seconds=30))
    await verifier.claims(issuer.token(exp=int(time.time()) - 10))
    await verifier.claims(issuer.token(nbf=int(time.time()) + 10))


async def test_a_key_from_another_issuer_is_refused(issuer: FakeIssuer, clock: Clock) -> None:
    other = FakeIssuer()
    verifier = verifier_for(issuer, clock)
    forged = other.token(kid="key-1")  # the same key id, another key
    with pytest.raises(InvalidToken):
        await verifier.claims(forged)
    with pytest.raises(InvalidToken, match="does not publish"):
        await verifier.claims(other.token(kid=other.rotate()))


async def test_a_rotation_is_followed_without_a_restart(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    await verifier.claims(issuer.token())
    assert issuer.jwks_fetches == 1
    new_kid = issuer.rotate()
    clock.now += 6  # past the refetch floor
    claims = await verifier.claims(issuer.token(kid=new_kid))
    assert claims["staff_id"] == "liaison-01"
    assert issuer.jwks_fetches == 2
    await verifier.claims(issuer.token(kid="key-1"))  # the old key still published: cached
    assert issuer.jwks_fetches == 2


async def test_unknown_key_ids_cannot_hammer_the_issuer(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    await verifier.claims(issuer.token())
    for n in range(20):
        with pytest.raises(InvalidToken):
            await verifier.claims(_forged_kid(n))
    assert issuer.jwks_fetches == 1  # within the refetch floor: no refetch at all


def _forged_kid(n: int) -> str:
    return jwt.encode({"iss": ISSUER}, FORGER, algorithm="RS256", headers={"kid": f"forged-{n}"})


async def test_concurrent_first_requests_fetch_the_keys_once(
    issuer: FakeIssuer, clock: Clock
) -> None:
    verifier = verifier_for(issuer, clock)
    await asyncio.gather(*(verifier.claims(issuer.token()) for _ in range(10)))
    assert issuer.jwks_fetches == 1


async def test_a_removed_key_stops_being_accepted(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    old = issuer.token(kid="key-1")
    await verifier.claims(old)
    issuer.rotate()
    issuer.published.remove("key-1")
    clock.now += 601  # the cache's age limit
    with pytest.raises(InvalidToken, match="does not publish"):
        await verifier.claims(old)


async def test_an_unreachable_issuer(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    issuer.down = True
    with pytest.raises(IssuerUnavailable):
        await verifier.claims(issuer.token())
    issuer.down = False
    clock.now += 6
    await verifier.claims(issuer.token())
    issuer.down = True
    clock.now += 601
    await verifier.claims(issuer.token())  # cached keys keep serving while the issuer is down


async def test_refused_clients_and_claim_names(issuer: FakeIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock, refused_clients=frozenset({"cmhl-test"}))
    with pytest.raises(InvalidToken, match="not accepted here"):
        await verifier.claims(issuer.token(azp="cmhl-test"))
    entra_like = verifier_for(
        issuer, clock, claims=ClaimNames(subject="oid", roles="realm_access.roles")
    )
    claims = await entra_like.claims(
        issuer.token(oid="u-9", realm_access={"roles": ["supervisor"]}, roles=None)
    )
    principal = entra_like.principal(claims)
    assert (principal.subject, principal.roles) == ("u-9", frozenset({Role.SUPERVISOR}))


def app_for(verifier: TokenVerifier) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = verifier

    @app.get("/people", dependencies=[require_any(Role.SUPERVISOR)])  # type: ignore[list-item]
    async def people(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/agency")
    async def agency(agency_id: CurrentAgency) -> dict[str, str]:
        return {"agency": agency_id}

    return app


async def test_http_answers(
    issuer: FakeIssuer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = verifier_for(issuer, clock)
    transport = httpx.ASGITransport(app=app_for(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        missing = await http.get("/people")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        expired = issuer.token(exp=int(time.time()) - 120)
        refused = await http.get("/people", headers={"Authorization": f"Bearer {expired}"})
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert expired not in refused.text
        liaison = {"Authorization": f"Bearer {issuer.token()}"}
        assert (await http.get("/people", headers=liaison)).status_code == 403
        supervisor = {"Authorization": f"Bearer {issuer.token(roles=['supervisor'])}"}
        assert (await http.get("/people", headers=supervisor)).json() == {"subject": "liaison-01"}
        # A person's token names no agency; an agency client's does.
        assert (await http.get("/agency", headers=liaison)).status_code == 403
        agency = {"Authorization": f"Bearer {issuer.token(agency='boone-so', roles=None)}"}
        assert (await http.get("/agency", headers=agency)).json() == {"agency": "boone-so"}
        issuer.down = True
        fresh = verifier_for(issuer, clock)
        transport = httpx.ASGITransport(app=app_for(fresh))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as cold:
            unavailable = await cold.get("/people", headers=supervisor)
        assert unavailable.status_code == 503
    # No token, nor any of its three parts, reaches a log.
    for token in (expired, issuer.token(), issuer.token(roles=["supervisor"])):
        for part in token.split("."):
            assert part not in caplog.text


async def test_an_endpoint_for_people_and_facilities_sees_which_facility_if_any(
    issuer: FakeIssuer, clock: Clock
) -> None:
    app = FastAPI()
    app.state.token_verifier = verifier_for(issuer, clock)

    @app.get("/facility")
    async def facility(own: OptionalFacility) -> dict[str, str | None]:
        return {"facility": own}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        person = {"Authorization": f"Bearer {issuer.token()}"}
        assert (await http.get("/facility", headers=person)).json() == {"facility": None}
        client = {"Authorization": f"Bearer {issuer.token(facility='fac-1', roles=None)}"}
        assert (await http.get("/facility", headers=client)).json() == {"facility": "fac-1"}
        assert (await http.get("/facility")).status_code == 401
