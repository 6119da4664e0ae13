"""Date rules for legacy exports: dd/mm/yyyy, d/m/yyyy, ISO, with or without time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

VIETNAM_TZ = timezone(timedelta(hours=7), "+07:00")

_DATE = (
    r"(?:(?P<d>\d{1,2})[/.\-](?P<m>\d{1,2})[/.\-](?P<y>\d{4})"
    r"|(?P<Y>\d{4})[/.\-](?P<M>\d{1,2})[/.\-](?P<D>\d{1,2}))"
)
_TIME = (
    r"(?P<H>\d{1,2})[:hg](?P<MI>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,6}))?)?"
    r"\s*(?P<tz>Z|[+\-]\d{2}:?\d{2})?"
)
_DATE_RE = re.compile(rf"^{_DATE}(?:(?:\s+|T){_TIME})?$")
_TIME_FIRST_RE = re.compile(rf"^{_TIME}\s+{_DATE}$")
_MIN_YEAR, _MAX_YEAR = 1800, 2100


@dataclass(slots=True, frozen=True)
class ParsedDate:
    """A parsed date: ``value`` is None when empty or invalid; ``problem`` says why."""

    value: date | datetime | None
    text: str
    problem: str | None = None


def _tzinfo(spec: str | None, default: timezone) -> timezone:
    if not spec:
        return default
    if spec == "Z":
        return UTC
    sign = -1 if spec[0] == "-" else 1
    digits = spec[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_date(text: str, *, tz: timezone = VIETNAM_TZ) -> ParsedDate:
    """Parse a legacy date; a time makes it an aware datetime (``tz`` when none is written).

    An impossible or unreadable value gives ``value=None`` and a Vietnamese ``problem``;
    the caller keeps ``text`` so the information is not lost.
    """
    text = " ".join(text.split())
    if not text:
        return ParsedDate(None, "")
    match = _DATE_RE.match(text) or _TIME_FIRST_RE.match(text)
    if match is None:
        return ParsedDate(None, text, f"không nhận dạng được ngày tháng '{text}'")
    g = match.groupdict()
    year, month, day = (
        (int(g["y"]), int(g["m"]), int(g["d"]))
        if g["y"]
        else (int(g["Y"]), int(g["M"]), int(g["D"]))
    )
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return ParsedDate(None, text, f"năm {year} nằm ngoài khoảng hợp lệ trong '{text}'")
    try:
        day_value = date(year, month, day)
    except ValueError:
        return ParsedDate(None, text, f"ngày không tồn tại '{text}'")
    if g["H"] is None:
        return ParsedDate(day_value, text)
    try:
        micro = int((g["F"] or "0").ljust(6, "0"))
        value = datetime(
            year,
            month,
            day,
            int(g["H"]),
            int(g["MI"]),
            int(g["S"] or 0),
            micro,
            tzinfo=_tzinfo(g["tz"], tz),
        )
    except ValueError:
        return ParsedDate(None, text, f"giờ không hợp lệ trong '{text}'")
    return ParsedDate(value, text)


def as_datetime(value: date | datetime | None, *, tz: timezone = VIETNAM_TZ) -> datetime | None:
    """Widen a date to an aware datetime at midnight in ``tz``; keep datetimes as they are."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=tz)
