"""Bearer-token authentication shared by every service's HTTP API: RS256 access tokens from the
program's OpenID Connect provider (Keycloak locally; a state's Entra ID, Okta or Keycloak in
production), checked against the keys the issuer publishes (JWKS).

People carry roles: liaison (own caseload), supervisor (their CMHC), metrics_consumer (aggregates
only), privacy_officer (accounting of disclosures), program_admin (users and clients, in the
provider). Machine clients (an agency's records system, a facility) sign in with OAuth2 client
credentials; their token names the one agency or facility they may act for. The services hold no
signing secret: only the issuer's URL is configuration."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger(__name__)

# The only algorithm accepted. Naming it here, not taking it from the token's header, is what
# refuses `alg: none` and HS256 tokens signed with the public key as an HMAC secret.
ALGORITHM = "RS256"


class Role(StrEnum):
    LIAISON = "liaison"
    SUPERVISOR = "supervisor"
    METRICS_CONSUMER = "metrics_consumer"
    PRIVACY_OFFICER = "privacy_officer"
    PROGRAM_ADMIN = "program_admin"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    cmhc_id: str | None
    client_id: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class ClaimNames:
    """Where a provider puts what the services read. Keycloak (deploy/local/keycloak) emits these
    names; a state's provider maps its own (docs/operations.md). A dotted name reads a nested
    claim, e.g. `realm_access.roles`."""

    subject: str = "staff_id"
    roles: str = "roles"
    cmhc: str = "cmhc"
    agency: str = "agency"
    facility: str = "facility"


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    clock_skew: timedelta = timedelta(seconds=30)
    claims: ClaimNames = field(default_factory=ClaimNames)
    # Clients whose tokens are refused even though the issuer signed them: the local stack's
    # password-grant test client, anywhere but the local stack.
    refused_clients: frozenset[str] = frozenset()


class InvalidToken(Exception):
    """The token is not one this service accepts; the message says why without quoting it."""


class IssuerUnavailable(Exception):
    """The issuer's keys could not be fetched and none are cached."""


class IssuerKeys:
    """The issuer's signing keys by key id, fetched through OIDC discovery and cached.

    A token signed with a key id not in the cache refetches the JWKS (at most once every
    `min_refetch`, so a flood of forged key ids cannot hammer the issuer): a rotation in the
    provider is followed without a restart. The cache is also refreshed every `max_age`, so a key
    the provider removed stops being accepted. If the issuer is unreachable, the cached keys keep
    serving. `reach_at` is the issuer's address from where the service runs, when that is not
    the issuer URL (inside a container network); the discovery document must still name the
    issuer URL, and its `jwks_uri` must be reachable from here (Keycloak's backchannel)."""

    def __init__(
        self,
        issuer: str,
        *,
        reach_at: str | None = None,
        client: httpx.AsyncClient | None = None,
        max_age: timedelta = timedelta(minutes=10),
        min_refetch: timedelta = timedelta(seconds=5),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._reach_at = (reach_at or issuer).rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=5)
        self._owns_client = client is None
        self._max_age = max_age.total_seconds()
        self._min_refetch = min_refetch.total_seconds()
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._jwks_uri: str | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
        unknown = kid not in self._keys
        may_refetch = self._fetched_at is None or now - self._fetched_at >= self._min_refetch
        if stale or (unknown and may_refetch):
            await self._refresh(decided_after=self._fetched_at)
        return self._keys.get(kid)

    async def _refresh(self, decided_after: float | None) -> None:
        async with self._lock:
            if self._fetched_at != decided_after:
                return  # another request refreshed while this one waited: one fetch serves all
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWKError) as exc:
                if not self._keys:
                    raise IssuerUnavailable(f"cannot fetch the issuer's keys: {exc}") from exc
                log.warning("issuer keys not refreshed, keeping the cached ones: %s", exc)
            # Also after a failure: retry no sooner than min_refetch.
            self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str, Any]:
        if self._jwks_uri is None:
            discovery = await self._client.get(f"{self._reach_at}/.well-known/openid-configuration")
            discovery.raise_for_status()
            document = discovery.json()
            if document.get("issuer", "").rstrip("/") != self._issuer:
                raise ValueError("the discovery document names another issuer")
            self._jwks_uri = str(document["jwks_uri"])
        answer = await self._client.get(self._jwks_uri)
        answer.raise_for_status()
        keys: dict[str, Any] = {}
        for jwk in answer.json()["keys"]:
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue  # encryption keys and other key types sign nothing we accept
            keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
        return keys

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _claim(claims: dict[str, Any], dotted: str) -> Any:
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class TokenVerifier:
    def __init__(self, settings: TokenSettings, keys: IssuerKeys) -> None:
        self.settings = settings
        self._keys = keys

    async def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("not a JWT") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"only {ALGORITHM} tokens from the issuer are accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no signing key")
        key = await self._keys.key(kid)
        if key is None:
            raise InvalidToken("signed with a key the issuer does not publish")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.clock_skew,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token from another issuer") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("invalid token") from exc
        if claims.get("azp") in self.settings.refused_clients:
            raise InvalidToken("tokens of this client are not accepted here")
        return claims

    def principal(self, claims: dict[str, Any]) -> Principal:
        names = self.settings.claims
        granted = _claim(claims, names.roles)
        known = {r.value for r in Role}
        roles = frozenset(
            Role(r) for r in (granted if isinstance(granted, list) else []) if r in known
        )
        subject = _claim(claims, names.subject) or claims.get("sub")
        cmhc = _claim(claims, names.cmhc)
        azp = claims.get("azp")
        return Principal(
            str(subject),
            roles,
            str(cmhc) if cmhc else None,
            str(azp) if azp else None,
        )


_bearer = HTTPBearer(
    auto_error=False, description="An access token from the program's OpenID Connect provider"
)


def _unauthorized(reason: str) -> HTTPException:
    # RFC 6750: the challenge says the token was the problem; the reason never quotes the token.
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        reason,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


async def verified_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return await verifier.claims(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    except IssuerUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the identity provider cannot be reached to check the token; retry shortly",
            headers={"Retry-After": "5"},
        ) from None


VerifiedClaims = Annotated[dict[str, Any], Depends(verified_claims)]


async def _forwardable_token(
    _: VerifiedClaims,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    assert credentials is not None  # verified_claims refused a request without one
    return credentials.credentials


ForwardableToken = Annotated[str, Depends(_forwardable_token)]
"""The caller's own (verified) access token, for a service that asks another as the caller."""


async def current_principal(request: Request, claims: VerifiedClaims) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.principal(claims)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_any(*roles: Role) -> object:
    """A dependency that admits a principal holding at least one of `roles`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.roles.intersection(roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role does not allow this")
        return principal

    return Depends(check)


def _bound_to(kind: str) -> Callable[..., Any]:
    """A dependency giving the one agency or facility a machine client's token is bound to."""

    async def bound(request: Request, claims: VerifiedClaims) -> str:
        names: ClaimNames = request.app.state.token_verifier.settings.claims
        value = _claim(claims, getattr(names, kind))
        if not isinstance(value, str) or not value:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this endpoint is for a {kind}'s client; the token names no {kind}",
            )
        return value

    return bound


CurrentAgency = Annotated[str, Depends(_bound_to("agency"))]
CurrentFacility = Annotated[str, Depends(_bound_to("facility"))]


async def _facility_if_any(request: Request, claims: VerifiedClaims) -> str | None:
    names: ClaimNames = request.app.state.token_verifier.settings.claims
    value = _claim(claims, names.facility)
    return value if isinstance(value, str) and value else None


OptionalFacility = Annotated[str | None, Depends(_facility_if_any)]
"""The facility a machine client's token is bound to, or None (a person's token): for an
endpoint that admits both people with a role and a facility acting for itself."""


def token_settings_from(
    *,
    issuer: str,
    audience: str,
    clock_skew_seconds: int,
    claims: dict[str, str],
    refused_clients: list[str],
) -> TokenSettings:
    return TokenSettings(
        issuer=issuer.rstrip("/"),
        audience=audience,
        clock_skew=timedelta(seconds=clock_skew_seconds),
        claims=ClaimNames(**claims),
        refused_clients=frozenset(refused_clients),
    )
