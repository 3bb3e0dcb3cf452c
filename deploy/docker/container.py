"""The image's entry point: run the service named at build time, or probe its health.

    python /app/container.py serve     python -m cmhl_<CMHL_SERVICE>, listening on every interface
    python /app/container.py health    exit 0 when GET /health/live answers 200 (HEALTHCHECK)
    python /app/container.py ready     exit 0 when GET /health/ready answers 200 (compose)

The services bind 127.0.0.1 by default (safe on a laptop); in a container that would make them
unreachable, so `serve` defaults CMHL_<SERVICE>_HTTP_HOST to 0.0.0.0 unless it is set.
"""

import importlib
import os
import runpy
import sys
import urllib.request


def service() -> str:
    name = os.environ.get("CMHL_SERVICE", "")
    if not name.isidentifier():
        raise SystemExit("CMHL_SERVICE is not set: build the image with --build-arg SERVICE=<name>")
    return name


def http_port(name: str) -> int:
    """The port from the environment, else the service's own default (its settings class)."""
    configured = os.environ.get(f"CMHL_{name.upper()}_HTTP_PORT")
    if configured:
        return int(configured)
    from cmhl_servicekit.settings import HttpSettings

    config = importlib.import_module(f"cmhl_{name}.config")
    for value in vars(config).values():
        is_settings = isinstance(value, type) and issubclass(value, HttpSettings)
        if is_settings and value.__module__ == config.__name__:
            return int(value.model_fields["http_port"].default)
    raise SystemExit(f"cmhl_{name}.config has no settings class")


def serve(name: str) -> None:
    os.environ.setdefault(f"CMHL_{name.upper()}_HTTP_HOST", "0.0.0.0")  # noqa: S104
    sys.argv = [f"cmhl_{name}"]
    runpy.run_module(f"cmhl_{name}", run_name="__main__", alter_sys=True)


def probe(name: str, check: str) -> None:
    url = f"http://127.0.0.1:{http_port(name)}/health/{check}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            ok = response.status == 200
    except OSError as exc:
        raise SystemExit(f"{url}: {exc}") from None
    raise SystemExit(0 if ok else 1)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        serve(service())
    elif command in ("health", "ready"):
        probe(service(), "live" if command == "health" else "ready")
    else:
        raise SystemExit(f"unknown command {command!r}: serve, health or ready")


if __name__ == "__main__":
    main()
