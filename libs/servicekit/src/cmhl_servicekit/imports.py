"""Batch imports of a program's earlier records (referrals, trainings): the shapes every import
endpoint answers with, and how a record's validation error is told without its values.

Each record of a batch is checked on its own: one that breaks a rule is rejected with its index,
its record id (only if that id is itself valid) and the reason, and the rest goes on. A record
imported before (its id derives from the earlier system and the record id) is counted, never
stored twice."""

from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

T = TypeVar("T")

RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
_RECORD_ID = TypeAdapter(RecordId)


class ImportBatch(BaseModel):
    """Records of one earlier system, each validated on its own (so: plain objects here)."""

    model_config = ConfigDict(extra="forbid")
    system: RecordId = Field(description="The earlier system, e.g. `dmh-cmhl-2005`")
    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=500)]


class Rejection(BaseModel):
    index: int
    record_id: str | None
    reason: str


class ImportResult(BaseModel):
    imported: int = 0
    already_imported: int = 0
    rejected: list[Rejection] = Field(default_factory=list)

    def reject(self, index: int, raw: dict[str, Any], reason: str) -> None:
        self.rejected.append(Rejection(index=index, record_id=record_id_of(raw), reason=reason))
        self.rejected.sort(key=lambda r: r.index)

    def count(self, stored: bool) -> None:
        if stored:
            self.imported += 1
        else:
            self.already_imported += 1


def record_id_of(raw: dict[str, Any]) -> str | None:
    """The record's id, only if it is a valid one (anything else could be a person's name)."""
    try:
        return str(_RECORD_ID.validate_python(raw.get("record_id")))
    except ValidationError:
        return None


def reason_of(exc: ValidationError) -> str:
    """Which fields broke which rule; never the values (they may name a person)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts[:5])


def valid_records(
    batch: ImportBatch, adapter: TypeAdapter[T], result: ImportResult
) -> Iterator[tuple[int, T]]:
    """The batch's records that pass `adapter`, with their index; the others are rejected in
    `result` with the fields and rules they broke."""
    for index, raw in enumerate(batch.records):
        try:
            record = adapter.validate_python(raw)
        except ValidationError as exc:
            result.reject(index, raw, reason_of(exc))
            continue
        yield index, record
