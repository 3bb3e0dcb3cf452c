"""The e2e tests' system: one stack of their own with every service, started with
deploy/local/stack.py exactly as `make up` starts it, shared by the e2e modules."""

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from cmhl_servicekit.testing import headless_chromium

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(REPO / "deploy" / "local" / "stack.py")]
DEMO = [sys.executable, str(REPO / "deploy" / "local" / "demo.py")]


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    running = os.environ.get("CMHL_E2E_STATE_DIR")
    if running:  # a stack already up with --services (while working on a test): used as it is
        folder = Path(running)
        yield {
            "stack": json.loads((folder / "stack.json").read_text()),
            "credentials": json.loads((folder / "credentials.json").read_text()),
            "state_dir": folder,
        }
        return
    state = tmp_path_factory.mktemp("e2e-stack")
    # Infrastructure must be installable here; the e2e run needs it whatever the env vars say.
    if not os.environ.get("CMHL_TEST_KAFKA_BOOTSTRAP") and not os.environ.get("CI"):
        pytest.skip("run through `make test`, which installs the stack this test starts")
    try:
        subprocess.run(
            [*STACK, "up", "--free-ports", "--services", "--state-dir", str(state)],
            check=True,
            timeout=600,
        )
        # The registry, directory and facilities a program enters first, through the APIs as
        # `make up`'s demo loads them (no referral: each test makes its own).
        subprocess.run(
            [*DEMO, "--reference-data", "--state-dir", str(state)], check=True, timeout=300
        )
        yield {
            "stack": json.loads((state / "stack.json").read_text()),
            "credentials": json.loads((state / "credentials.json").read_text()),
            "state_dir": state,
        }
    finally:
        subprocess.run([*STACK, "down", "--state-dir", str(state)], check=False, timeout=120)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright: one per test."""
    async with headless_chromium() as launched:
        yield launched
