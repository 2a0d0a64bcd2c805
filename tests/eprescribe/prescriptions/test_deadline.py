"""The collection deadline: the end of the Vietnamese calendar day, counted as the Civil Code counts days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from eprescribe.prescriptions.policy import POLICY, collection_deadline
from kit.time import VIETNAM_TIME, end_of_vn_day, is_end_of_vn_day


class TestCollectionDeadline:
    def test_five_days_after_the_issue_day_until_its_last_second(self) -> None:
        issued = datetime(2026, 12, 2, 6, 48, 40, tzinfo=VIETNAM_TIME)
        deadline = collection_deadline(issued)
        assert deadline.isoformat() == "2026-12-07T23:59:59+07:00"
        assert POLICY.collection_days == 5

    @pytest.mark.parametrize(
        "issued",
        [
            datetime(2026, 12, 2, 0, 0, 0, tzinfo=VIETNAM_TIME),
            datetime(2026, 12, 2, 23, 59, 59, tzinfo=VIETNAM_TIME),
            # 02/12 in Vietnam, still 01/12 in UTC: the Vietnamese day decides.
            datetime(2026, 12, 1, 17, 30, tzinfo=UTC),
            datetime(2026, 12, 2, 3, 0, tzinfo=timezone(timedelta(hours=9))),
        ],
    )
    def test_any_moment_of_the_issue_day_gives_the_same_deadline(self, issued: datetime) -> None:
        assert collection_deadline(issued) == end_of_vn_day(date(2026, 12, 7))

    def test_a_patient_coming_on_the_last_morning_is_in_time(self) -> None:
        deadline = collection_deadline(datetime(2026, 12, 2, 6, 48, 40, tzinfo=VIETNAM_TIME))
        assert datetime(2026, 12, 7, 10, 0, tzinfo=VIETNAM_TIME) < deadline
        assert datetime(2026, 12, 8, 0, 0, tzinfo=VIETNAM_TIME) > deadline

    def test_across_a_month_and_a_year_end(self) -> None:
        issued = datetime(2026, 12, 29, 15, 0, tzinfo=VIETNAM_TIME)
        assert collection_deadline(issued).isoformat() == "2027-01-03T23:59:59+07:00"

    def test_end_of_day_is_recognised(self) -> None:
        assert is_end_of_vn_day(end_of_vn_day(date(2026, 12, 7)))
        assert is_end_of_vn_day(end_of_vn_day(date(2026, 12, 7)).astimezone(UTC))
        assert not is_end_of_vn_day(datetime(2026, 12, 7, 6, 48, 40, tzinfo=VIETNAM_TIME))
