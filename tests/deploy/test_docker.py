"""deploy/docker, checked without a Docker engine: BuildKit's own Dockerfile front end parses the
recipe, checks every instruction and flag and runs its lint rules (see deploy/checks); these tests
then check the rules, and the image's entry point runs here against a stand-in service."""

import http.server
import importlib.util
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
Check = Callable[[str, Path], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def stages(run_check: Check) -> dict[str, list[tuple[str, str]]]:
    result = run_check("dockerfile", DOCKER / "Dockerfile")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return {s["name"]: [tuple(c) for c in s["commands"]] for s in parsed["stages"]}


def lines(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [line for name, line in stage if name == keyword]


def test_the_parser_rejects_bad_flags_and_lint_warnings(run_check: Check, tmp_path: Path) -> None:
    bad_flag = tmp_path / "Dockerfile"
    bad_flag.write_text("FROM python:3.11-slim\nCOPY --frm=build /app /app\n")
    assert "unknown flag" in run_check("dockerfile", bad_flag).stderr
    lint = tmp_path / "Lint.Dockerfile"
    lint.write_text("FROM python:3.11-slim as Build\nCMD python -m x\n")
    assert "lint" in run_check("dockerfile", lint).stderr


def test_uv_is_the_makefiles_version_and_installs_only_the_lock(
    stages: dict[str, list[tuple[str, str]]],
) -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert makefile is not None
    assert f"ARG UV_VERSION={makefile.group(1)}" in lines(stages["uv"], "ARG")
    [sync] = [line for line in lines(stages["build"], "RUN") if "uv sync" in line]
    for flag in ("--frozen", "--no-dev", "--no-editable", '--package "cmhl-${SERVICE}"'):
        assert flag in sync


def test_the_service_image_is_the_default_runs_as_non_root_and_checks_its_health(
    stages: dict[str, list[tuple[str, str]]],
) -> None:
    assert list(stages)[-1] == "service", "a plain `docker build` builds a service"
    for name in ("service", "demo"):
        [user] = lines(stages[name], "USER")
        uid, gid = user.removeprefix("USER ").split(":")
        assert int(uid) > 0
        assert int(gid) > 0, "numeric ids: runAsNonRoot can check them"
    [health] = lines(stages["service"], "HEALTHCHECK")
    assert health.endswith('CMD ["python", "/app/container.py", "health"]')
    assert lines(stages["service"], "ENV") == ["ENV CMHL_SERVICE=${SERVICE}"]


def test_the_build_context_admits_exactly_what_the_recipe_copies(
    stages: dict[str, list[tuple[str, str]]],
) -> None:
    admitted = {
        line.removeprefix("!").rstrip("/")
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for stage in stages.values():
        for line in lines(stage, "COPY"):
            if "--from=" not in line:
                copied.update(line.split()[1:-1])
    assert copied == admitted


def test_the_demo_image_holds_every_step_and_data_file_demo_py_uses(
    stages: dict[str, list[tuple[str, str]]],
) -> None:
    local = REPO / "deploy" / "local"
    steps = re.findall(r"^from (demo_\w+) import", (local / "demo.py").read_text(), re.M)
    assert steps, "demo.py's steps are modules beside it"
    needed = {f"deploy/local/{step}.py" for step in steps}
    for step in steps:
        for data in re.findall(r'"data" / "([^"]+)"', (local / f"{step}.py").read_text()):
            needed.add(f"deploy/local/data/{data}")
    copied = set()
    for line in lines(stages["demo"], "COPY"):
        if "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert needed <= copied, f"the demo image lacks {sorted(needed - copied)}"


def load_container() -> ModuleType:
    spec = importlib.util.spec_from_file_location("container", DOCKER / "container.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_entry_point_finds_each_services_port(
    service: str, port_of: Callable[[str], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"CMHL_{service.upper()}_HTTP_PORT", raising=False)
    assert load_container().http_port(service) == port_of(service)
    monkeypatch.setenv(f"CMHL_{service.upper()}_HTTP_PORT", "9999")
    assert load_container().http_port(service) == 9999


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 503)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def fake_service() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_health_commands_follow_the_service(fake_service: int) -> None:
    def run(command: str) -> int:
        env = {"CMHL_SERVICE": "training", "CMHL_TRAINING_HTTP_PORT": str(fake_service)}
        return subprocess.run(
            [sys.executable, str(DOCKER / "container.py"), command],
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode

    assert run("health") == 0
    assert run("ready") != 0, "the stand-in answers 503 on /health/ready"
