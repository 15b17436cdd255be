"""The editable holiday calendar (detectors/signals/calendar.py, detectors/data/holidays.yaml,
TOCSIN_HOLIDAYS): parsing, clear errors for bad files, and local day types."""

from __future__ import annotations

import copy
import math
import pickle
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signals.calendar import (
    DEFAULT_FILE,
    CalendarError,
    HolidayCalendar,
    load_calendar,
    parse_calendar,
)
from detectors.signals.counts import CountSurge
from detectors.signals.shift import SustainedShift
from streams.core.errors import ConfigError
from streams.core.settings import TocsinSettings, load_holidays
from streams.evaluation.world.catalog import HOLIDAYS, UTC_OFFSET_H


def _ts(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> float:
    return datetime(y, m, d, h, minute, tzinfo=UTC).timestamp()


# -- day types -------------------------------------------------------------------------

def test_default_is_weekends_in_utc_without_holidays() -> None:
    cal = HolidayCalendar()
    assert [cal.day_type(_ts(2025, 3, d, 12)) for d in range(3, 10)] == [0, 0, 0, 0, 0, 1, 1]
    assert cal.day_type(_ts(2025, 1, 1, 12)) == 0  # New Year's Day: no holidays by default


def test_local_day_follows_the_utc_offset() -> None:
    cal = HolidayCalendar([date(2025, 1, 1)], utc_offset_s=8 * 3600)
    # 16:00 UTC on 31 December is local midnight of New Year's Day
    assert cal.day_type(_ts(2024, 12, 31, 15, 59)) == 0
    assert cal.day_type(_ts(2024, 12, 31, 16, 0)) == 1
    assert cal.local_date(_ts(2024, 12, 31, 16, 0)) == date(2025, 1, 1)
    assert cal.day_type(_ts(2025, 1, 1, 16, 0)) == 0  # Thursday 2 January, local
    # Friday 3 January 16:00 UTC is Saturday local
    assert cal.day_type(_ts(2025, 1, 3, 15, 59)) == 0
    assert cal.day_type(_ts(2025, 1, 3, 16, 0)) == 1


def test_a_make_up_workday_is_a_working_day_and_a_holiday_wins() -> None:
    sun = date(2025, 1, 26)
    cal = HolidayCalendar([date(2025, 1, 28)], workdays=[sun])
    assert cal.day_type(_ts(2025, 1, 26, 12)) == 0
    assert cal.day_type(_ts(2025, 1, 25, 12)) == 1  # the Saturday before: still weekend
    assert HolidayCalendar([sun], workdays=[sun]).day_type(_ts(2025, 1, 26, 12)) == 1


def test_a_time_zone_name_keeps_daylight_saving() -> None:
    ny = HolidayCalendar([date(2025, 7, 4)], tz="America/New_York")
    # 04:00 UTC on 4 July is 00:00 EDT (UTC-4); in winter midnight is 05:00 UTC
    assert ny.day_type(_ts(2025, 7, 4, 3, 59)) == 0
    assert ny.day_type(_ts(2025, 7, 4, 4, 0)) == 1
    assert ny.local_date(_ts(2025, 1, 6, 4, 59)) == date(2025, 1, 5)
    assert ny.local_date(_ts(2025, 1, 6, 5, 0)) == date(2025, 1, 6)
    with pytest.raises(ValueError, match="time zone"):
        HolidayCalendar(tz="Mars/Olympus_Mons")


@settings(max_examples=300, deadline=None)
@given(t=st.floats(0.0, 4e9), offset_min=st.integers(-12 * 60, 14 * 60).map(lambda m: m * 60),
       holidays=st.sets(st.dates(date(1970, 1, 2), date(2096, 1, 1)), max_size=30),
       workdays=st.sets(st.dates(date(1970, 1, 2), date(2096, 1, 1)), max_size=10))
def test_day_type_is_the_local_dates_kind(t: float, offset_min: int, holidays: set[date],
                                          workdays: set[date]) -> None:
    """Property: the day type is 1 exactly on a local holiday, or on a local Saturday or
    Sunday that is not a make-up workday (local date as datetime computes it)."""
    near = datetime.fromtimestamp(t, UTC).date()
    holidays |= {near, near + timedelta(days=3)}  # make holidays likely near t
    cal = HolidayCalendar(holidays, utc_offset_s=offset_min, workdays=workdays)
    local = (datetime.fromtimestamp(t, UTC) + timedelta(seconds=offset_min)).date()
    want = 1 if local in holidays or (local.weekday() >= 5 and local not in workdays) else 0
    assert cal.local_date(t) == local
    assert cal.day_type(t) == want
    assert cal.is_holiday(t) == (local in holidays)


@settings(max_examples=100, deadline=None)
@given(t=st.floats(0.0, 4e9))
def test_a_fixed_offset_and_its_zone_agree(t: float) -> None:
    fixed = HolidayCalendar([date(2025, 2, 1)], utc_offset_s=8 * 3600)
    zone = HolidayCalendar([date(2025, 2, 1)], tz="Asia/Shanghai")
    if datetime.fromtimestamp(t, ZoneInfo("Asia/Shanghai")).utcoffset() == timedelta(hours=8):
        assert fixed.day_type(t) == zone.day_type(t)
        assert fixed.local_day(t) == zone.local_day(t)


# -- parsing ---------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.tuples(st.dates(date(2000, 1, 1), date(2090, 1, 1)),
                                  st.integers(0, 10), st.booleans()), max_size=12),
       off=st.integers(-12, 14))
def test_parsed_entries_are_the_listed_dates(entries: list[tuple[date, int, bool]],
                                             off: int) -> None:
    """Property: single dates and inclusive ranges, as YAML text, give exactly their days."""
    lines = [f'utc_offset: "{"+" if off >= 0 else "-"}{abs(off):02d}:00"', "holidays:"]
    want: set[date] = set()
    for i, (a, n, as_range) in enumerate(entries):
        if as_range:
            b = a + timedelta(days=n)
            lines.append(f"  - {{from: {a}, to: {b}, name: h{i}}}")
            want |= {a + timedelta(days=k) for k in range(n + 1)}
        else:
            lines.append(f"  - {a}" if n % 2 else f"  - {{date: {a}, name: h{i}}}")
            want.add(a)
    import yaml

    cal = parse_calendar(yaml.safe_load("\n".join(lines)), "gen.yaml")
    assert cal.holidays == want
    assert cal.utc_offset_s == off * 3600


def test_the_shipped_file_holds_the_simulators_holidays() -> None:
    cal = load_calendar(DEFAULT_FILE)
    assert cal.utc_offset_s == UTC_OFFSET_H * 3600
    assert cal.holidays >= HOLIDAYS  # every public holiday streams/world/ draws from
    assert all(d.weekday() >= 5 for d in cal.workdays)
    assert cal.names[date(2025, 1, 29)] == "Spring Festival"
    # Sunday 26 January 2025 was worked; the 29th (Wednesday) was not
    assert cal.day_type(_ts(2025, 1, 26, 4)) == 0
    assert cal.day_type(_ts(2025, 1, 29, 4)) == 1
    assert load_holidays(None) == cal


BAD = [
    ("[1, 2]", "expected a mapping with a 'holidays' list"),
    ("holidays: {a: 1}", "holidays must be a list"),
    ("holidays:\n  - 2025-02-30", "holidays[0]: '2025-02-30' is not a date"),
    ("holidays:\n  - {date: 2025-01-01}\n  - {date: 2025-13-01, name: Typo}",
     "holidays[1] (Typo): '2025-13-01' is not a date; write YYYY-MM-DD"),
    ("holidays:\n  - {from: 2025-05-05, to: 2025-05-01, name: Labour}",
     "holidays[0] (Labour): 'to' 2025-05-01 is before 'from' 2025-05-05"),
    ("holidays:\n  - {from: 2025-05-01, to: 2052-05-05}", "a range holds at most"),
    ("holidays:\n  - {from: 2025-05-01}", "needs date, or both from and to"),
    ("holidays:\n  - {date: 2025-05-01, day: 1}", "unknown key(s) ['day']"),
    ("holidays:\n  - {date: 2025-05-01, from: 2025-05-01, to: 2025-05-02}",
     "either date or from/to"),
    ("holiday:\n  - 2025-05-01", "unknown key(s) ['holiday']"),
    ("utc_offset: 8 hours", "utc_offset '8 hours' is not an offset"),
    ("utc_offset: '+19:00'", "beyond +-18 hours"),
    ("timezone: Asia/Nowhere", "unknown timezone 'Asia/Nowhere'"),
    ("timezone: Asia/Shanghai\nutc_offset: '+08:00'", "not both"),
    ("workdays:\n  - {date: 2025-01-27, name: Monday}", "workdays: 2025-01-27 is a Monday"),
    ("holidays: [2025-01-01", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_file_names_the_file_and_the_entry(tmp_path: Path, text: str,
                                                 message: str) -> None:
    p = tmp_path / "holidays.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as e:
        load_calendar(p)
    assert str(e.value).startswith(f"{p}: ") and message in str(e.value)
    assert "\n" not in str(e.value)  # one line


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match=r"cannot read holiday calendar .*nope\.yaml"):
        load_calendar(tmp_path / "nope.yaml")


def test_an_empty_file_is_weekends_only(tmp_path: Path) -> None:
    p = tmp_path / "h.yaml"
    p.write_text("# nothing\n", encoding="utf-8")
    assert load_calendar(p) == HolidayCalendar()


# -- the setting -----------------------------------------------------------------------

def test_setting_a_bad_file_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    p = tmp_path / "hol.yaml"
    p.write_text("holidays:\n  - {date: 2025-10-32, name: National Day}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        TocsinSettings(holidays=p)
    msg = str(e.value)
    assert msg == (f"TOCSIN_HOLIDAYS: {p}: holidays[0] (National Day): '2025-10-32' is not a "
                   "date; write YYYY-MM-DD")


def test_setting_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "hol.yaml"
    p.write_text('timezone: Europe/Berlin\nholidays:\n  - 2025-10-03\n', encoding="utf-8")
    monkeypatch.setenv("TOCSIN_HOLIDAYS", str(p))
    cal = TocsinSettings().holiday_calendar
    assert cal.tz == "Europe/Berlin" and cal.holidays == {date(2025, 10, 3)}
    monkeypatch.delenv("TOCSIN_HOLIDAYS")
    assert TocsinSettings().holiday_calendar == load_calendar(DEFAULT_FILE)


# -- in the detectors ------------------------------------------------------------------

def test_calendar_pickles_and_copies_as_itself() -> None:
    cal = load_calendar(DEFAULT_FILE)
    back = pickle.loads(pickle.dumps(cal))
    assert back == cal and hash(back) == hash(cal) and back.names == cal.names
    assert copy.deepcopy(cal) is cal


def test_count_surge_puts_holidays_in_the_rest_day_slots() -> None:
    cal = HolidayCalendar([date(2026, 3, 4)])  # a Wednesday
    det = CountSurge(calendar=cal)
    wed = math.floor(_ts(2026, 3, 4) / 3600)
    assert [det._slot(wed + h) for h in (0, 13)] == [24, 37]
    assert [det._slot(wed - 24 + h) for h in (0, 13)] == [0, 13]
    assert CountSurge()._slot(wed + 13) == 13
    restored = pickle.loads(pickle.dumps(det))
    assert restored.calendar == cal and restored._slot(wed + 13) == 37


def test_sustained_shift_uses_the_calendar_and_stays_picklable() -> None:
    cal = HolidayCalendar([date(2026, 3, 4)])
    det = SustainedShift(calendar=cal)
    assert det._slot(_ts(2026, 3, 4, 13)) == 37 and det._slot(_ts(2026, 3, 3, 13)) == 13
    assert SustainedShift()._slot(_ts(2026, 3, 4, 13)) == 13
    for i in range(48):
        det.learn_one(10.0 + i % 3, _ts(2026, 3, 3) + i * 3600)
    back = pickle.loads(pickle.dumps(det))
    assert back.calendar == cal
    t = _ts(2026, 3, 5, 1)
    assert back.score_one(11.0, t) == det.score_one(11.0, t)
    # a state pickled before the calendar existed loads with the default
    state = det.__getstate__()
    del state["calendar"]
    old = SustainedShift.__new__(SustainedShift)
    old.__setstate__(state)
    assert old.calendar is None and old._slot(_ts(2026, 3, 4, 13)) == 13
