"""The OpenID Connect client's answers to an issuer that refuses, fails or does not answer:
a refusal means signing in again, anything else means trying again (never a crash)."""

from datetime import UTC, datetime

import httpx
import pytest

from cmhl_workspace.adapters.oidc import Challenge, IssuerUnreachable, OidcClient, SignInFailed

ISSUER = "https://id.example.org/realms/cmhl"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "end_session_endpoint": f"{ISSUER}/logout",
}


def client(token_answer: httpx.Response | Exception) -> OidcClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=DISCOVERY)
        assert request.url == "http://keycloak:8080/realms/cmhl/token"  # the back channel
        if isinstance(token_answer, Exception):
            raise token_answer
        return token_answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return OidcClient(
        ISSUER,
        "cmhl-workspace",
        "https://w/auth/callback",
        http,
        reach_at="http://keycloak:8080/realms/cmhl",
    )


async def test_a_refused_refresh_means_signing_in_again() -> None:
    refused = httpx.Response(400, json={"error": "invalid_grant", "error_description": "x"})
    with pytest.raises(SignInFailed, match="invalid_grant"):
        await client(refused).refresh("r", NOW)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"token_type": "Bearer"}),
    ],
)
async def test_an_issuer_that_fails_is_unreachable_not_a_crash(
    failure: httpx.Response | Exception,
) -> None:
    with pytest.raises(IssuerUnreachable):
        await client(failure).exchange("code", "verifier", NOW)


async def test_tokens_and_the_sign_in_address() -> None:
    answer = httpx.Response(
        200, json={"access_token": "a", "refresh_token": "r", "id_token": "i", "expires_in": 300}
    )
    oidc = client(answer)
    tokens = await oidc.exchange("code", "verifier", NOW)
    assert (tokens.access_token, tokens.refresh_token, tokens.id_token) == ("a", "r", "i")
    assert (tokens.expires_at - NOW).total_seconds() == 300
    challenge = Challenge("s", "n", "v" * 43)
    plain = httpx.URL(await oidc.authorization_url(challenge))
    again = httpx.URL(await oidc.authorization_url(challenge, ask_again=True))
    assert plain.params["code_challenge_method"] == "S256"
    assert "prompt" not in plain.params
    assert again.params["prompt"] == "login"
    ending = await oidc.end_session_form("id-token", "https://w/signed-out")
    assert ending == (
        f"{ISSUER}/logout",
        {
            "client_id": "cmhl-workspace",
            "post_logout_redirect_uri": "https://w/signed-out",
            "id_token_hint": "id-token",
        },
    )


async def test_an_issuer_that_names_another_issuer_is_not_trusted() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=DISCOVERY | {"issuer": "https://evil.example"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    oidc = OidcClient(ISSUER, "cmhl-workspace", "https://w/auth/callback", http)
    with pytest.raises(IssuerUnreachable, match="another issuer"):
        await oidc.authorization_url(Challenge.new())
