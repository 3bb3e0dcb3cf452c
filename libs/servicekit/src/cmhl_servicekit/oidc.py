"""Getting access tokens from the program's OpenID Connect provider, for scripts, tests and
machine clients: the password grant (the local stack's test client only) and OAuth2 client
credentials (an agency's or facility's client). Tokens are short-lived; `SignIn` fetches a new
one shortly before the last expires, so a long run never sends an expired token."""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

# A token this close to expiry is replaced before use: a request in flight must not outlive it.
RENEW_BEFORE_SECONDS = 30.0


class SignInRefused(Exception):
    """The provider refused the credentials; the message names the client or user, never a
    secret."""


def token_endpoint(issuer: str) -> str:
    """Keycloak's token endpoint: the local stack's and compose's provider."""
    return f"{issuer.rstrip('/')}/protocol/openid-connect/token"


@dataclass
class SignIn:
    """One principal's sign-in: a user's password (with the test client) or a client's secret."""

    issuer: str
    client_id: str
    username: str | None = None
    password: str | None = None
    client_secret: str | None = None
    _token: str | None = field(default=None, repr=False)
    _expires_at: float = 0.0

    def token(self, client: httpx.Client | None = None) -> str:
        if self._token is None or time.monotonic() > self._expires_at - RENEW_BEFORE_SECONDS:
            self._token, lifetime = self._fetch(client)
            self._expires_at = time.monotonic() + lifetime
        return self._token

    def headers(self, client: httpx.Client | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client)}"}

    def _fetch(self, client: httpx.Client | None) -> tuple[str, float]:
        form = {"client_id": self.client_id}
        if self.username is not None:
            form |= {
                "grant_type": "password",
                "username": self.username,
                "password": self.password or "",
            }
            who = f"user {self.username!r}"
        else:
            form |= {"grant_type": "client_credentials", "client_secret": self.client_secret or ""}
            who = f"client {self.client_id!r}"
        own = client is None
        http = client or httpx.Client(timeout=30)
        try:
            answer = http.post(token_endpoint(self.issuer), data=form)
        finally:
            if own:
                http.close()
        if answer.status_code != 200:
            reason = answer.json().get("error_description", "") if answer.content else ""
            raise SignInRefused(f"{self.issuer} refused {who}: {answer.status_code} {reason}")
        body = answer.json()
        return str(body["access_token"]), float(body.get("expires_in", 60))


def demo_user(credentials: Mapping[str, Any], username: str) -> SignIn:
    """A demo user of the local stack signing in with its test client, as named by the stack's
    credentials file (deploy/local/stack.py writes it: issuer, test client, demo password)."""
    return SignIn(
        credentials["issuer"],
        credentials["test_client"]["client_id"],
        username=username,
        password=credentials["keys"]["demo_password"],
    )
