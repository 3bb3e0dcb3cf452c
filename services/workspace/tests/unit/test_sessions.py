"""Session lifetimes, PKCE challenges and where a sign-in may return to."""

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import FormData

from cmhl_servicekit.auth import Principal, Role
from cmhl_workspace.adapters.oidc import Challenge
from cmhl_workspace.application.sessions import SessionPolicy, Tokens, digest
from cmhl_workspace.entrypoints.http.auth import _safe_return
from cmhl_workspace.entrypoints.http.context import form_key, new_form_key

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
LIAISON = Principal("liaison-01", frozenset({Role.LIAISON}), "cmhc-01")
TOKENS = Tokens("a", "r", "i", NOW + timedelta(minutes=5))


def test_a_session_ends_after_idle_time_and_at_the_longest_whatever_the_activity() -> None:
    policy = SessionPolicy(idle=timedelta(minutes=15), longest=timedelta(hours=10))
    session_id, session = policy.new_session(LIAISON, "liaison-01", TOKENS, NOW)
    assert session.key == digest(session_id) != session_id  # only the hash is stored
    assert len(session_id) >= 43
    assert session.csrf_token != session_id
    assert policy.is_live(session, NOW + timedelta(minutes=14))
    assert not policy.is_live(session, NOW + timedelta(minutes=15))
    # Activity moves the idle end, but never past the longest session.
    assert policy.touched(session, NOW + timedelta(seconds=10)) is None  # no write yet
    moment = NOW
    for _ in range(59):  # a request every 10 minutes for 9 h 50 min
        moment += timedelta(minutes=10)
        assert policy.is_live(session, moment)
        session = policy.touched(session, moment) or session
    assert session.expires_at == NOW + timedelta(hours=10)
    assert not policy.is_live(session, NOW + timedelta(hours=10))


def test_each_session_gets_its_own_ids() -> None:
    policy = SessionPolicy()
    first = policy.new_session(LIAISON, "liaison-01", TOKENS, NOW)
    second = policy.new_session(LIAISON, "liaison-01", TOKENS, NOW)
    assert first[0] != second[0]
    assert first[1].csrf_token != second[1].csrf_token


def test_the_pkce_challenge_is_rfc_7636s_s256() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = Challenge("state", "nonce", verifier)
    assert challenge.code_challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    fresh = Challenge.new()
    assert 43 <= len(fresh.code_verifier) <= 128
    assert Challenge.new().state != fresh.state


@pytest.mark.parametrize(
    ("asked", "returned"),
    [
        ("/caseload?status=received", "/caseload?status=received"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_a_sign_in_returns_only_to_a_page_of_the_workspace(
    asked: str | None, returned: str
) -> None:
    assert _safe_return(asked) == returned


def test_a_form_key_is_sent_only_as_the_workspace_made_it() -> None:
    """The key a page draws goes to the service as the Idempotency-Key; anything else a
    forged or edited form carries is not sent (the service then stores the form as new)."""
    made = new_form_key()
    assert form_key(FormData({"form_key": made})) == made
    for forged in ("", "x" * 32, made.upper(), made + "0", "key with spaces"):
        assert form_key(FormData({"form_key": forged})) is None
    assert form_key(FormData({})) is None
