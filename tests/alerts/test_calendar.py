"""Working days for the brigade's feedback deadline."""

from datetime import date, datetime

from alerts.calendar import WorkingCalendar
from ingest.china_time import CHINA_TZ


def at(y, m, d, h=15):
    return datetime(y, m, d, h, tzinfo=CHINA_TZ)


def test_three_working_days_from_friday_end_on_wednesday_night():
    due = WorkingCalendar().add_working_days(at(2026, 11, 20), 3)  # a Friday
    assert due == datetime(2026, 11, 26, 0, 0, tzinfo=CHINA_TZ)  # the end of Wednesday 25th


def test_holidays_are_skipped_and_make_up_weekend_days_count():
    # Spring Festival 2027 as configured in the example: Tue 16 - Fri 19 off, Sat 20 worked.
    cal = WorkingCalendar.of(
        holidays=[date(2027, 2, d) for d in (16, 17, 18, 19)], workdays=[date(2027, 2, 20)]
    )
    assert not cal.is_working_day(date(2027, 2, 17))
    assert cal.is_working_day(date(2027, 2, 20))
    due = cal.add_working_days(at(2027, 2, 15), 2)  # Monday: Sat 20 and Mon 22 count
    assert due == datetime(2027, 2, 23, 0, 0, tzinfo=CHINA_TZ)


def test_the_deadline_keeps_the_callers_time_zone():
    start = at(2026, 11, 23).astimezone(__import__("datetime").UTC)
    due = WorkingCalendar().add_working_days(start, 1)
    assert due.tzinfo == start.tzinfo and due == datetime(2026, 11, 25, tzinfo=CHINA_TZ)
