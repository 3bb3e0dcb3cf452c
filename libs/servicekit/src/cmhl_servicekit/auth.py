"""Bearer-token authentication for people (JWT, HS256) shared by every service's HTTP API.

Roles: liaison (own caseload), supervisor (their CMHC), metrics_consumer (aggregates only),
privacy_officer (accounting of disclosures). The signing key is configuration, never code."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer


class Role(StrEnum):
    LIAISON = "liaison"
    SUPERVISOR = "supervisor"
    METRICS_CONSUMER = "metrics_consumer"
    PRIVACY_OFFICER = "privacy_officer"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    cmhc_id: str | None

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    signing_key: str


def mint_token(
    settings: TokenSettings,
    *,
    subject: str,
    roles: list[Role],
    cmhc_id: str | None = None,
    lifetime: timedelta = timedelta(hours=12),
) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
        "roles": [str(role) for role in roles],
        "cmhc": cmhc_id,
    }
    return jwt.encode(claims, settings.signing_key, algorithm="HS256")


def verify_token(settings: TokenSettings, token: str) -> Principal:
    claims = jwt.decode(
        token,
        settings.signing_key,
        algorithms=["HS256"],
        audience=settings.audience,
        issuer=settings.issuer,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    known = {r.value for r in Role}
    roles = frozenset(Role(r) for r in claims.get("roles", []) if r in known)
    cmhc = claims.get("cmhc")
    return Principal(str(claims["sub"]), roles, str(cmhc) if cmhc else None)


_bearer = HTTPBearer(auto_error=False, description="JWT issued for a liaison or other role")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise _unauthorized("missing bearer token")
    settings: TokenSettings = request.app.state.token_settings
    try:
        return verify_token(settings, credentials.credentials)
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("invalid token") from exc


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_any(*roles: Role) -> object:
    """A dependency that admits a principal holding at least one of `roles`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.roles.intersection(roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role does not allow this")
        return principal

    return Depends(check)


def api_key_hash(key: str) -> str:
    """What is stored of an agency's API key: its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()


_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An agency system's key, bound to one agency"
)


async def current_agency(request: Request, key: Annotated[str | None, Depends(_api_key)]) -> str:
    """The agency an API key belongs to (401 for a missing or unknown key)."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key")
    keys: dict[str, str] = request.app.state.agency_api_keys
    agency = keys.get(api_key_hash(key))
    if agency is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
    return agency


CurrentAgency = Annotated[str, Depends(current_agency)]
