"""Inside a major version only optional fields may be added: the committed snapshots guard it."""

import copy
import json

from cmhl_contracts import ALL_EVENTS
from cmhl_contracts.schemas import breaking_changes, current_schemas, snapshot_path


def test_every_event_has_a_committed_snapshot() -> None:
    missing = [e.topic() for e in ALL_EVENTS if not snapshot_path(e.topic()).exists()]
    assert not missing, f"run `uv run python -m cmhl_contracts.schemas` and commit: {missing}"


def test_live_schemas_make_no_breaking_change_against_the_snapshots() -> None:
    for topic, schema in current_schemas().items():
        snapshot = json.loads(snapshot_path(topic).read_text())
        assert breaking_changes(snapshot, schema) == [], topic


def test_checker_flags_removed_retyped_and_newly_required_fields() -> None:
    old = current_schemas()["cmhl.referral.referral-created.v1"]
    removed = copy.deepcopy(old)
    del removed["properties"]["county_fips"]
    assert any("county_fips: removed" in p for p in breaking_changes(old, removed))

    retyped = copy.deepcopy(old)
    retyped["properties"]["repeat_involvement"] = {"type": "string"}
    assert any("repeat_involvement" in p for p in breaking_changes(old, retyped))

    required = copy.deepcopy(old)
    required["properties"]["new_field"] = {"type": "string"}
    required["required"].append("new_field")
    assert breaking_changes(old, required) == ["$.new_field: newly required"]


def test_checker_accepts_a_new_optional_field() -> None:
    old = current_schemas()["cmhl.referral.referral-created.v1"]
    new = copy.deepcopy(old)
    new["properties"]["new_optional"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert breaking_changes(old, new) == []


def test_checker_flags_a_removed_enum_value() -> None:
    old = current_schemas()["cmhl.referral.referral-created.v1"]
    new = copy.deepcopy(old)
    new["$defs"]["ReferralSource"]["enum"].remove("sheriff")
    assert breaking_changes(old, new) == ["$.$defs.ReferralSource: enum value 'sheriff' removed"]
