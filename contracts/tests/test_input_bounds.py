"""The shared input types refuse, with a validation error (a 422, a dead letter), what used to
overflow or slip through: date-times near year 1 or 9999 with an offset, future birth dates,
control characters in names."""

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from cmhl_contracts.envelope import BoundedDatetime, UtcDatetime, YearMonth
from cmhl_contracts.events import BirthDate, PersonName, ReadableText

UTC_MOMENT: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)
ANY_MOMENT: TypeAdapter[datetime] = TypeAdapter(BoundedDatetime)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00-05:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59+14:00",
        "1899-12-31T23:59:59Z",
        "2101-01-01T00:00:00Z",
    ],
)
def test_date_times_outside_1900_to_2100_are_refused_before_any_conversion(value: str) -> None:
    with pytest.raises(ValidationError, match="between 1900 and 2100"):
        UTC_MOMENT.validate_python(value)
    with pytest.raises(ValidationError, match="between 1900 and 2100"):
        ANY_MOMENT.validate_python(value.removesuffix("Z")[:19])


def test_date_times_inside_the_bounds_are_normalised_to_utc() -> None:
    assert UTC_MOMENT.validate_python("2100-12-31T23:00:00-05:00") == datetime(
        2101, 1, 1, 4, tzinfo=UTC
    )
    earliest = ANY_MOMENT.validate_python("1900-01-01T00:00:00")
    assert (earliest.year, earliest.tzinfo) == (1900, None)


def test_birth_dates_are_in_the_past() -> None:
    born: TypeAdapter[date] = TypeAdapter(BirthDate)
    assert born.validate_python("1971-03-04") == date(1971, 3, 4)
    for value in (datetime.now(UTC).date() + timedelta(days=2), date(1850, 1, 1)):
        with pytest.raises(ValidationError, match="past date"):
            born.validate_python(value)


@pytest.mark.parametrize("name", ["Ro\x00e", "Roe\n", "R\x1boe", "\x7f"])
def test_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        TypeAdapter(PersonName).validate_python(name)


def test_a_lone_surrogate_is_not_a_string() -> None:
    with pytest.raises(ValidationError, match="unicode"):
        TypeAdapter(PersonName).validate_python("Ro\ud800e")


def test_names_of_every_script_are_kept() -> None:
    for name in ("Nguyễn", "O'Brien-Smith", "Zoë", "José María", "王"):
        assert TypeAdapter(PersonName).validate_python(name) == name


@pytest.mark.parametrize(
    ("month", "accepted"),
    [
        ("1900-01", True),
        ("2099-12", True),
        ("1899-12", False),
        ("2100-01", False),
        ("0000-01", False),
        ("9999-12", False),
        ("2026-13", False),
        ("2026-1", False),
    ],
)
def test_a_month_is_checked_before_any_date_is_made_of_it(month: str, accepted: bool) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(YearMonth)
    if accepted:
        assert adapter.validate_python(month) == month
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(month)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("De-escalation for patrol", True),
        ("Crisis Intervention Team — 40 h", True),
        ("   ", False),
        ("", False),
        ("title\x00", False),
        ("line\nbreak", False),
        ("\u200b\u200b\u200b", False),  # zero-width: looks blank
        ("\ud800abc", False),  # a lone surrogate
        ("x" * 201, False),
    ],
)
def test_text_people_read_is_visible_text(text: str, accepted: bool) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(ReadableText)
    if accepted:
        assert adapter.validate_python(text) == text
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(text)
