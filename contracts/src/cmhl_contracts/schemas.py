"""JSON Schema snapshots of the wire events, and the rule that a major version only grows.

`python -m cmhl_contracts.schemas` rewrites the committed snapshots; the contract test compares
the live schemas against them and fails on any non-additive change."""

import json
from pathlib import Path
from typing import Any

from cmhl_contracts.events import AGENCY_EVENTS, ALL_EVENTS

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "schemas"

JsonSchema = dict[str, Any]


def current_schemas() -> dict[str, JsonSchema]:
    return {
        event.topic(): event.model_json_schema(mode="serialization")
        for event in (*ALL_EVENTS, *AGENCY_EVENTS)
    }


def snapshot_path(topic: str) -> Path:
    return SNAPSHOT_DIR / f"{topic}.json"


def breaking_changes(old: JsonSchema, new: JsonSchema, where: str = "$") -> list[str]:
    """What in `new` would break a consumer written against `old` (the same major version).

    Allowed: new optional properties, new definitions. Breaking: a property removed or retyped,
    a property newly required, an enum value removed."""
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{where}.{name}: removed")
            continue
        problems.extend(_compare_property(old_prop, new_props[name], f"{where}.{name}"))
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    problems.extend(f"{where}.{name}: newly required" for name in sorted(newly_required))
    for name, old_def in old.get("$defs", {}).items():
        new_def = new.get("$defs", {}).get(name)
        if new_def is None:
            problems.append(f"{where}.$defs.{name}: removed")
        else:
            problems.extend(breaking_changes(old_def, new_def, f"{where}.$defs.{name}"))
    if "enum" in old:
        removed = set(old["enum"]) - set(new.get("enum", []))
        problems.extend(f"{where}: enum value {value!r} removed" for value in sorted(removed))
    return problems


def _compare_property(old: Any, new: Any, where: str) -> list[str]:
    for key in ("type", "$ref", "format", "anyOf", "items"):
        if old.get(key) != new.get(key) and not (key == "anyOf" and _widened(old, new)):
            return [f"{where}: {key} changed from {old.get(key)!r} to {new.get(key)!r}"]
    return []


def _widened(old: Any, new: Any) -> bool:
    """An `anyOf` that keeps every old branch and adds some only widens what is accepted."""
    old_branches = old.get("anyOf") or []
    new_branches = new.get("anyOf") or []
    return all(branch in new_branches for branch in old_branches)


def write_snapshots() -> list[Path]:
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    written = []
    for topic, schema in current_schemas().items():
        path = snapshot_path(topic)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_snapshots():
        print(f"wrote {path}")  # noqa: T201
