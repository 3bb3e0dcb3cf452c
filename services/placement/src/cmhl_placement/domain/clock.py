"""The 96-hour clock of an involuntary detention (RSMo 632.305) and the points that flag it."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

DETENTION_LIMIT = timedelta(hours=96)
Flag = Literal["due_soon", "overdue"]
# Flag -> hours after detention start: time to escalate at 72 h, and at 90 h a last warning.
FLAG_HOURS: dict[Flag, int] = {"due_soon": 72, "overdue": 90}


@dataclass(frozen=True)
class DetentionClock:
    detention_started_at: datetime

    @property
    def deadline_at(self) -> datetime:
        return self.detention_started_at + DETENTION_LIMIT

    def elapsed(self, now: datetime) -> timedelta:
        return max(now - self.detention_started_at, timedelta(0))

    def remaining(self, now: datetime) -> timedelta:
        return self.deadline_at - now

    def flag_at(self, flag: Flag) -> datetime:
        return self.detention_started_at + timedelta(hours=FLAG_HOURS[flag])

    def flags(self, now: datetime) -> list[Flag]:
        """The flags reached by `now`, never early."""
        return [flag for flag in FLAG_HOURS if self.flag_at(flag) <= now]

    def expired(self, now: datetime) -> bool:
        return now >= self.deadline_at


def hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)
