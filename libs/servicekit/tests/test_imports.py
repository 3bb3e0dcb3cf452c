"""Batch imports: each record validated on its own, rejections that name fields and rules but
never a value, and the record id echoed only when it is a valid id."""

from datetime import date

from pydantic import BaseModel, TypeAdapter

from cmhl_servicekit.imports import ImportBatch, ImportResult, valid_records


class Record(BaseModel):
    record_id: str
    name: str
    born: date


def test_invalid_records_are_rejected_by_rule_and_the_rest_go_on() -> None:
    batch = ImportBatch(
        system="old-system",
        records=[
            {"record_id": "r-1", "name": "Ada", "born": "1980-01-02"},
            {"record_id": "r-2", "name": "Secret Name", "born": "not-a-date"},
            {"record_id": "Jane Doe 1975", "name": "x", "born": "1975-13-40"},
            {"record_id": "r-4", "name": "Bo", "born": "1990-05-05"},
        ],
    )
    result = ImportResult()
    valid = list(valid_records(batch, TypeAdapter(Record), result))
    assert [(i, r.record_id) for i, r in valid] == [(0, "r-1"), (3, "r-4")]
    assert [(r.index, r.record_id) for r in result.rejected] == [(1, "r-2"), (2, None)]
    assert "born" in result.rejected[0].reason
    text = result.model_dump_json()
    assert "not-a-date" not in text
    assert "Jane Doe" not in text  # an id that is not a valid id may be a name: not echoed
    result.count(True)
    result.count(False)
    assert (result.imported, result.already_imported) == (1, 1)
