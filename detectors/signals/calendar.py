"""An editable holiday calendar: which local days are working days.

Detectors with a weekly rhythm (:class:`~detectors.signals.counts.CountSurge`, and
:class:`~detectors.signals.shift.SustainedShift` if given one) keep working days apart from weekends
and public holidays. A :class:`HolidayCalendar` says which kind of day an instant falls on, in the
city's local time: a fixed UTC offset (``utc_offset: "+08:00"``) or an IANA time zone name
(``timezone: Asia/Shanghai``). Holidays are local dates; ``workdays`` are weekend dates
worked instead (make-up working days, e.g. China's adjusted working days).

Loaded from a YAML file the user edits (default ``detectors/data/holidays.yaml``, see that
file for the format; the ``TOCSIN_HOLIDAYS`` setting points at another)::

    utc_offset: "+08:00"
    holidays:
      - {date: 2025-01-01, name: New Year's Day}
      - {from: 2025-01-28, to: 2025-02-04, name: Spring Festival}
    workdays:
      - {date: 2025-01-26, name: Spring Festival make-up working day}

>>> from datetime import UTC
>>> cal = HolidayCalendar([date(2025, 1, 1)], utc_offset_s=8 * 3600)
>>> t = datetime(2024, 12, 31, 16, 30, tzinfo=UTC).timestamp()   # 00:30 on 1 Jan, local
>>> cal.day_type(t), cal.day_type(t - 3600), cal.is_holiday(t)
(1, 0, True)
>>> HolidayCalendar().day_type(datetime(2025, 1, 4, tzinfo=UTC).timestamp())  # Saturday
1
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DAY_S = 86400
#: 1 January 1970 was a Thursday (``date.weekday()`` 3)
_EPOCH_WEEKDAY = 3
_EPOCH = date(1970, 1, 1)
#: the longest holiday range an entry may give (a typo like 2025 -> 2052 fails loudly)
MAX_RANGE_DAYS = 62
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")

WORKING_DAY = 0
REST_DAY = 1  # a weekend day or a public holiday


class _Loader(yaml.SafeLoader):
    """Safe YAML, dates left as text: a bad date is reported with its entry, by us."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class CalendarError(ValueError):
    """A holiday calendar file is unreadable or malformed; the message names the file and
    the entry."""


class HolidayCalendar:
    """Local days: working days (type 0) and weekends or holidays (type 1).

    ``holidays`` are local dates off work; ``workdays`` are local weekend dates worked
    (a holiday listed in both is a holiday). The local day of an instant is taken at
    ``utc_offset_s`` seconds east of UTC, or in the IANA zone ``tz`` if given (daylight
    saving included). The default is UTC with weekends only and no holidays.

    Small and immutable: detectors share one and pickle it with their state.
    """

    __slots__ = ("_holidays", "_workdays", "names", "tz", "utc_offset_s")

    def __init__(self, holidays: Iterable[date] = (), utc_offset_s: float = 0.0,
                 tz: str | None = None, workdays: Iterable[date] = (),
                 names: dict[date, str] | None = None) -> None:
        if not -18 * 3600 <= utc_offset_s <= 18 * 3600:
            raise ValueError(f"utc_offset_s must be within +-18 h, got {utc_offset_s!r}")
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(f"unknown time zone {tz!r}") from e
        self.utc_offset_s = float(utc_offset_s)
        self.tz = tz
        # days since the epoch (local), for a cheap lookup per instant
        self._holidays = frozenset((d - _EPOCH).days for d in holidays)
        self._workdays = frozenset((d - _EPOCH).days for d in workdays)
        self.names = dict(names or {})

    # immutable: copies are the object itself
    def __copy__(self) -> HolidayCalendar:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> HolidayCalendar:
        return self

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.utc_offset_s, self.tz, self._holidays, self._workdays, self.names)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.utc_offset_s, self.tz, self._holidays, self._workdays, self.names) = state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HolidayCalendar):
            return NotImplemented
        return self.__getstate__()[:4] == other.__getstate__()[:4]

    def __hash__(self) -> int:
        return hash(self.__getstate__()[:4])

    def __repr__(self) -> str:
        where = f"tz={self.tz!r}" if self.tz else f"utc_offset_s={self.utc_offset_s:g}"
        return (f"HolidayCalendar({where}, {len(self._holidays)} holidays, "
                f"{len(self._workdays)} workdays)")

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(_EPOCH + timedelta(days=d) for d in self._holidays)

    @property
    def workdays(self) -> frozenset[date]:
        return frozenset(_EPOCH + timedelta(days=d) for d in self._workdays)

    def local_day(self, t: float) -> int:
        """Days since 1970-01-01 of the local date of the instant ``t`` (epoch seconds)."""
        if self.tz is None:
            return math.floor((t + self.utc_offset_s) / DAY_S)
        return (datetime.fromtimestamp(t, ZoneInfo(self.tz)).date() - _EPOCH).days

    def local_date(self, t: float) -> date:
        return _EPOCH + timedelta(days=self.local_day(t))

    def is_holiday(self, t: float) -> bool:
        return self.local_day(t) in self._holidays

    def day_type(self, t: float) -> int:
        """0 on a working day, 1 on a weekend day or a public holiday (local time)."""
        day = self.local_day(t)
        if day in self._holidays:
            return REST_DAY
        if (day + _EPOCH_WEEKDAY) % 7 >= 5:
            return WORKING_DAY if day in self._workdays else REST_DAY
        return WORKING_DAY


def _date(v: Any, where: str) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise CalendarError(f"{where}: {v!r} is not a date; write YYYY-MM-DD")


def _offset_s(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise CalendarError(f"{where}: utc_offset {v!r} is not an offset like \"+08:00\"")
    if isinstance(v, int | float):
        hours = float(v)  # hours east of UTC
    else:
        m = _OFFSET.match(str(v).strip())
        if m is None:
            raise CalendarError(f"{where}: utc_offset {v!r} is not an offset like \"+08:00\"")
        hours = int(m[2]) + int(m[3] or 0) / 60.0
        if m[1] == "-":
            hours = -hours
    if not -18.0 <= hours <= 18.0:
        raise CalendarError(f"{where}: utc_offset {v!r} is beyond +-18 hours")
    return hours * 3600.0


def _entry_dates(entry: Any, where: str) -> tuple[list[date], str]:
    """The dates of one list entry: a date, or a mapping with ``date`` or ``from``/``to``
    (inclusive) and an optional ``name``."""
    if not isinstance(entry, dict):
        return [_date(entry, where)], ""
    unknown = set(entry) - {"date", "from", "to", "name"}
    if unknown:
        raise CalendarError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; use date "
                            "or from/to, and name")
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise CalendarError(f"{where}: name must be text, got {name!r}")
    label = f"{where} ({name})" if name else where
    if "date" in entry:
        if "from" in entry or "to" in entry:
            raise CalendarError(f"{label}: give either date or from/to, not both")
        return [_date(entry["date"], label)], name
    if "from" not in entry or "to" not in entry:
        raise CalendarError(f"{label}: needs date, or both from and to")
    a, b = _date(entry["from"], label), _date(entry["to"], label)
    if b < a:
        raise CalendarError(f"{label}: 'to' {b} is before 'from' {a}")
    n = (b - a).days + 1
    if n > MAX_RANGE_DAYS:
        raise CalendarError(f"{label}: {n} days from {a} to {b}; a range holds at most "
                            f"{MAX_RANGE_DAYS} (a typo in a year?)")
    return [a + timedelta(days=i) for i in range(n)], name


def parse_calendar(data: Any, where: str = "<holidays>") -> HolidayCalendar:
    """A calendar from parsed YAML (see the module docstring); :class:`CalendarError`
    names the entry that is wrong."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CalendarError(f"{where}: expected a mapping with a 'holidays' list "
                            "(see detectors/data/holidays.yaml)")
    unknown = set(data) - {"utc_offset", "timezone", "holidays", "workdays"}
    if unknown:
        raise CalendarError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; use "
                            "utc_offset or timezone, holidays, workdays")
    if "utc_offset" in data and "timezone" in data:
        raise CalendarError(f"{where}: give utc_offset or timezone, not both")
    offset = _offset_s(data["utc_offset"], where) if "utc_offset" in data else 0.0
    tz = data.get("timezone")
    if tz is not None:
        if not isinstance(tz, str):
            raise CalendarError(f"{where}: timezone must be a name like Asia/Shanghai")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise CalendarError(f"{where}: unknown timezone {tz!r}; use an IANA name like "
                                "Asia/Shanghai, or utc_offset") from e
    lists: dict[str, list[date]] = {}
    names: dict[date, str] = {}
    for key in ("holidays", "workdays"):
        entries = data.get(key) or []
        if not isinstance(entries, list):
            raise CalendarError(f"{where}: {key} must be a list of dates or "
                                "{date, name} / {from, to, name} entries")
        out = lists[key] = []
        for i, entry in enumerate(entries):
            days, name = _entry_dates(entry, f"{where}: {key}[{i}]")
            out.extend(days)
            if key == "holidays" and name:
                names.update(dict.fromkeys(days, name))
    for d in lists["workdays"]:
        if d.weekday() < 5:
            raise CalendarError(f"{where}: workdays: {d} is a {d.strftime('%A')}; list only "
                                "weekend days worked instead")
    return HolidayCalendar(lists["holidays"], offset, tz, lists["workdays"], names)


def load_calendar(path: str | Path) -> HolidayCalendar:
    """Read a holiday calendar YAML file; :class:`CalendarError` names what is wrong."""
    p = Path(path)
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise CalendarError(f"cannot read holiday calendar {p}: {exc.strerror or exc}"
                            ) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from exc
    return parse_calendar(data, str(p))


DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "holidays.yaml"

__all__ = ["DEFAULT_FILE", "REST_DAY", "WORKING_DAY", "CalendarError", "HolidayCalendar",
           "load_calendar", "parse_calendar"]
