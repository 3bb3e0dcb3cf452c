"""Answers carry the security headers; correlation ids are always UUIDs; the API pages are
served without a CDN."""

import re
import uuid

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.http import SecurityHeaders, api_app


async def test_every_answer_carries_the_security_headers() -> None:
    app = FastAPI()

    @app.get("/record")
    async def record() -> dict[str, str]:
        return {"name": "synthetic"}

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>dashboard</p>"

    app.add_middleware(SecurityHeaders)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        json_answer = await client.get("/record")
        html_answer = await client.get("/page")
        missing = await client.get("/nothing-here")
    for answer in (json_answer, html_answer, missing):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert json_answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert not html_answer.headers["content-security-policy"].startswith("default-src")


def test_correlation_ids_are_uuids_whatever_the_caller_sends() -> None:
    given = str(uuid.uuid4())
    assert correlation_id_from(given) == given
    assert correlation_id_from(given.upper()) == given
    free_text = correlation_id_from("Jane Roe 1990-01-02")
    assert uuid.UUID(free_text)
    assert "Jane" not in free_text
    assert correlation_id_from("Jane Roe 1990-01-02") == free_text  # a retry keeps its id
    assert uuid.UUID(correlation_id_from(None)) != uuid.UUID(correlation_id_from(""))


async def test_api_pages_load_nothing_from_another_site() -> None:
    app = api_app(title="t", description="d")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            sources += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
            assert sources, page
            for source in sources:
                assert source.startswith("/"), (page, source)  # this service, no CDN
                if not source.endswith(".json"):
                    asset = await client.get(source)
                    assert asset.status_code == 200, (page, source)
