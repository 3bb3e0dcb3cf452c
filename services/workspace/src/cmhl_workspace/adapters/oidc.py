"""The workspace as an OpenID Connect client: authorization code with PKCE (S256), token
refresh, and the issuer's sign-out. The browser talks to the issuer's public URL; the workspace
reaches its token endpoint at `reach_at` when that differs (a container network)."""

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx


class SignInFailed(Exception):
    """The issuer refused the code or the refresh; the user signs in again."""


class IssuerUnreachable(Exception):
    """The issuer did not answer, or not in OpenID Connect's terms: try again shortly."""


@dataclass(frozen=True)
class Challenge:
    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def new(cls) -> "Challenge":
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenAnswer:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: datetime


class OidcClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        http: httpx.AsyncClient,
        reach_at: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._reach_at = (reach_at or issuer).rstrip("/")
        self._http = http
        self._discovery: dict[str, Any] | None = None

    async def _endpoints(self) -> dict[str, Any]:
        if self._discovery is None:
            answer = await self._send("GET", f"{self._reach_at}/.well-known/openid-configuration")
            document = _json(answer)
            if answer.status_code != 200 or not {"authorization_endpoint", "token_endpoint"} <= set(
                document
            ):
                raise IssuerUnreachable(f"no discovery document (HTTP {answer.status_code})")
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                raise IssuerUnreachable("the discovery document names another issuer")
            self._discovery = document
        return self._discovery

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise IssuerUnreachable(
                f"the identity provider did not answer ({type(exc).__name__})"
            ) from exc

    def _backchannel(self, url: str) -> str:
        """An endpoint as the workspace reaches it (the document names the public URL)."""
        return self._reach_at + url[len(self.issuer) :] if url.startswith(self.issuer) else url

    async def authorization_url(self, challenge: Challenge, *, ask_again: bool = False) -> str:
        """Where the browser signs in. `ask_again` makes the issuer ask for the password even if
        its own session is still alive (after the workspace ended a session for idleness)."""
        endpoints = await self._endpoints()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": challenge.state,
            "nonce": challenge.nonce,
            "code_challenge": challenge.code_challenge,
            "code_challenge_method": "S256",
        }
        if ask_again:
            query["prompt"] = "login"
        return f"{endpoints['authorization_endpoint']}?{urlencode(query)}"

    async def exchange(self, code: str, code_verifier: str, now: datetime) -> TokenAnswer:
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": code_verifier,
            },
            now,
        )

    async def refresh(self, refresh_token: str, now: datetime) -> TokenAnswer:
        return await self._token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
            },
            now,
        )

    async def _token(self, form: dict[str, str], now: datetime) -> TokenAnswer:
        endpoints = await self._endpoints()
        answer = await self._send("POST", self._backchannel(endpoints["token_endpoint"]), data=form)
        body = _json(answer)
        if 400 <= answer.status_code < 500:
            # The issuer's error code (invalid_grant, ...) only: its description may echo input.
            raise SignInFailed(f"the identity provider refused: {body.get('error', 'refused')}")
        if answer.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise IssuerUnreachable(f"the identity provider answered HTTP {answer.status_code}")
        try:
            lifetime = int(body.get("expires_in", 60))
        except (TypeError, ValueError):
            lifetime = 60
        return TokenAnswer(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            expires_at=now + timedelta(seconds=lifetime),
        )

    async def end_session_form(
        self, id_token: str | None, after: str
    ) -> tuple[str, dict[str, str]] | None:
        """Where the browser posts to end its session at the issuer (then comes back to
        `after`), and the fields: posted, so the ID token never sits in a URL or a history."""
        endpoint = (await self._endpoints()).get("end_session_endpoint")
        if not endpoint:
            return None
        fields = {"client_id": self.client_id, "post_logout_redirect_uri": after}
        if id_token:
            fields["id_token_hint"] = id_token
        return str(endpoint), fields

    async def revoke(self, refresh_token: str) -> None:
        """Revokes the refresh token from the back channel, so a session the workspace ended
        cannot be renewed from a copy of it (best effort: the caller ignores a failure)."""
        endpoint = (await self._endpoints()).get("revocation_endpoint")
        if endpoint:
            await self._send(
                "POST",
                self._backchannel(endpoint),
                data={
                    "token": refresh_token,
                    "token_type_hint": "refresh_token",
                    "client_id": self.client_id,
                },
            )


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
