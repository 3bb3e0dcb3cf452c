"""The services' APIs, called with the signed-in user's access token: each service still
decides what this user may see, and audits it. The workspace keeps none of the answers."""

from dataclasses import dataclass
from typing import Any

import httpx

from cmhl_servicekit.correlation import correlation_id_from


class ApiRefused(Exception):
    """A service said no (4xx) or could not answer; `detail` is its reason, ready to show."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Unauthenticated(ApiRefused):
    """The token was refused (401): the user signs in again."""


@dataclass(frozen=True)
class Services:
    referral: str
    followup: str
    training: str
    placement: str
    notifications: str


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return f"the service answered {answer.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # a validation error: field and rule, never the input
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'input'}: {e.get('msg', '')}"
            for e in detail
        )
    return str(detail or f"the service answered {answer.status_code}")


class ServiceApi:
    def __init__(self, http: httpx.AsyncClient, services: Services) -> None:
        self._http = http
        self.services = services

    async def call(
        self,
        method: str,
        base: str,
        path: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        correlation: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if correlation:
            headers["X-Correlation-Id"] = correlation_id_from(correlation)
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            answer = await self._http.request(
                method, base + path, params=clean, json=json, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ApiRefused(
                503, f"{_service_name(base, self.services)} cannot be reached; try again shortly"
            ) from exc
        if answer.status_code == 401:
            raise Unauthenticated(401, "your sign-in has ended; sign in again")
        if answer.status_code >= 400:
            raise ApiRefused(answer.status_code, _detail(answer))
        if answer.headers.get("content-type", "").startswith("application/json"):
            return answer.json()
        return answer.text


def _service_name(base: str, services: Services) -> str:
    for name in ("referral", "followup", "training", "placement", "notifications"):
        if getattr(services, name) == base:
            return f"the {name} service"
    return "a service"
