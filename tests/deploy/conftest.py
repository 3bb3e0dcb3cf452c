"""Fixtures for the deploy checks: our Go tool (compose-go and kustomize's API), built once per
version of its sources into the cache, and the rendered compose model and Kubernetes objects."""

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cmhl_servicekit.settings import HttpSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHECKS = DEPLOY / "checks"
CACHE = Path(os.environ.get("CMHL_CACHE_DIR", Path.home() / ".cache" / "cmhl"))
OVERLAYS = ("dev", "prod")


def service_names() -> list[str]:
    """Every deployable service: a services/<name> package that runs with `python -m`."""
    return sorted(
        main.parent.name.removeprefix("cmhl_")
        for main in REPO.glob("services/*/src/cmhl_*/__main__.py")
    )


def settings_class(service: str) -> type[HttpSettings]:
    config = importlib.import_module(f"cmhl_{service}.config")
    classes = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, HttpSettings)
        and value.__module__ == config.__name__
    ]
    assert len(classes) == 1, f"cmhl_{service}.config should define one settings class"
    return classes[0]


def required_env(service: str) -> set[str]:
    """The variables a service cannot start without (no default in its settings class)."""
    cls = settings_class(service)
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name.upper()}" for name, f in cls.model_fields.items() if f.is_required()}


def default_port(service: str) -> int:
    return int(settings_class(service).model_fields["http_port"].default)


def uses_kafka(service: str) -> bool:
    """Whether a service consumes or produces events: its settings name a broker."""
    return "kafka_bootstrap" in settings_class(service).model_fields


def called_services(service: str) -> list[str]:
    """The services a service calls over HTTP: one `<name>_url` setting per service it calls."""
    fields = settings_class(service).model_fields
    return [name for name in service_names() if f"{name}_url" in fields]


def _source_digest() -> str:
    files = sorted([CHECKS / "go.mod", CHECKS / "go.sum", *CHECKS.glob("*.go")])
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def deploy_check(pytestconfig: pytest.Config) -> Path:
    """deploy/checks built with Go into ~/.cache/cmhl/deploy-checks-<hash>/: a fresh machine
    builds it once (about half a minute, modules from the Go module proxy), later runs reuse it."""
    binary = CACHE / f"deploy-checks-{_source_digest()}" / "cmhl-deploy-check"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        pytest.fail("the deploy checks need Go (1.26+) on PATH to build deploy/checks", False)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(message: str) -> None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(f"\n[deploy-checks] {message}\n")
            sys.stderr.flush()

    say(f"building deploy/checks into {binary.parent} (first run only)")
    started = time.monotonic()
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(partial), "."],
        cwd=CHECKS,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"go build of deploy/checks failed:\n{result.stderr[-4000:]}", False)
    partial.replace(binary)  # atomic: a parallel session never runs a half-written binary
    say(f"built in {time.monotonic() - started:.0f} s")
    for stale in CACHE.glob("deploy-checks-*"):  # builds of earlier sources, ~30 MB each
        if stale != binary.parent:
            shutil.rmtree(stale, ignore_errors=True)
    return binary


@pytest.fixture(scope="session")
def run_check(deploy_check: Path) -> Callable[[str, Path], subprocess.CompletedProcess[str]]:
    def run(command: str, target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(deploy_check), command, str(target)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            # Interpolation must use the compose file's own defaults, not this shell's values.
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())},
        )

    return run


@pytest.fixture(scope="session")
def compose_model(
    run_check: Callable[[str, Path], subprocess.CompletedProcess[str]],
) -> dict[str, Any]:
    result = run_check("compose", DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="session")
def rendered(
    run_check: Callable[[str, Path], subprocess.CompletedProcess[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Overlay name -> its objects, as `kubectl apply -k deploy/k8s/overlays/<name>` sends them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        result = run_check("kustomize", DEPLOY / "k8s" / "overlays" / overlay)
        assert result.returncode == 0, f"kustomize {overlay}: {result.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`service` runs a test once per deployable service, `overlay` once per Kubernetes overlay."""
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", service_names())
    if "overlay" in metafunc.fixturenames:
        metafunc.parametrize("overlay", OVERLAYS)


@pytest.fixture(scope="session")
def services() -> list[str]:
    return service_names()


@pytest.fixture(scope="session")
def env_required_by() -> Callable[[str], set[str]]:
    return required_env


@pytest.fixture(scope="session")
def port_of() -> Callable[[str], int]:
    return default_port


@pytest.fixture(scope="session")
def settings_of() -> Callable[[str], type[HttpSettings]]:
    return settings_class


@pytest.fixture(scope="session")
def kafka_user() -> Callable[[str], bool]:
    return uses_kafka


@pytest.fixture(scope="session")
def calls() -> Callable[[str], list[str]]:
    return called_services
