"""Logs never carry what a request's URL holds: an HTTP client's request lines stay out."""

import logging

import httpx
import pytest

from cmhl_servicekit.logging import configure_logging


async def test_outgoing_request_urls_are_not_logged(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("test", "INFO")

        def answer(_: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={})

        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            await client.get("http://referral/api/v1/referrals", params={"family_name": "Okafor"})
        logging.getLogger("cmhl").info("still logging")
        printed = capsys.readouterr().out
        assert "still logging" in printed
        assert "Okafor" not in printed
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
