"""Memory: the peak RSS of every process of the stack during the other benchmarks.

    python -m bench.memory

Each benchmark samples the RSS of Kafka, FerretDB, each service and itself twice a second and
records the peaks in its result; this one gathers them into one table (MB)."""

import json
import time
from typing import Any

from bench.common import RESULTS, say, write_result

SOURCES = {
    "referral_api": ["resources"],
    "agency_intake": ["resources"],
    "agency_intake_isolated": ["resources"],
    "freshness": ["resources"],
    "freshness_sustained": ["resources"],
    "catchup": ["resources_service", "resources_naive"],
}


def main() -> None:
    started = time.monotonic()
    by_benchmark: dict[str, dict[str, float]] = {}
    for name, keys in SOURCES.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            say(f"no {path.name}: run `python -m bench.{name}` first")
            continue
        result: dict[str, Any] = json.loads(path.read_text())
        peaks: dict[str, float] = {}
        for key in keys:
            for process, rss in result.get(key, {}).get("peak_rss_mb", {}).items():
                peaks[process] = max(peaks.get(process, 0.0), rss)
        by_benchmark[name] = peaks
    overall: dict[str, float] = {}
    for peaks in by_benchmark.values():
        for process, rss in peaks.items():
            overall[process] = max(overall.get(process, 0.0), rss)
    write_result(
        "memory",
        {
            "peak_rss_mb": dict(sorted(overall.items())),
            "peak_rss_mb_by_benchmark": by_benchmark,
            "note": "`reporting` in catchup is the cold reporting process the benchmark starts",
        },
        started,
    )


if __name__ == "__main__":
    main()
