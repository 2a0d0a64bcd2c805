"""The dialect's scalars read leniently where HIS software is lenient, never past garbage."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from eprescribe.national import values
from eprescribe.national.problems import Problems


def read(reader: Any, raw: Any, **options: Any) -> tuple[Any, Problems]:
    problems = Problems()
    return reader(raw, ("f",), problems, **options), problems


@pytest.mark.parametrize("raw", [None, "", "   ", ".", "-", "/"])
def test_placeholders_mean_absent(raw: Any) -> None:
    value, problems = read(values.text, raw)
    assert value is None
    assert not problems


def test_a_missing_required_value_is_reported_in_vietnamese() -> None:
    value, problems = read(values.text, "", required=True)
    assert value is None
    assert [(p.field, p.code, p.message) for p in problems] == [
        ("f", "bat_buoc", "bắt buộc, không được để trống")
    ]


@pytest.mark.parametrize(
    ("raw", "expected"), [("20", 20), (20, 20), (20.0, 20), ("20.0", 20), ("20,00", 20), (" 7 ", 7)]
)
def test_whole_numbers_as_strings_or_numbers(raw: Any, expected: int) -> None:
    assert read(values.integer, raw) == (expected, Problems())


@pytest.mark.parametrize("raw", ["1.5", 1.5, "mười", "1e3", True, "0x10"])
def test_fractions_and_words_are_not_whole_numbers(raw: Any) -> None:
    value, problems = read(values.integer, raw)
    assert value is None
    assert [p.code for p in problems] == ["sai_dinh_dang"]
    assert "phải là số nguyên" in problems.items[0].message


def test_out_of_range_numbers_are_reported() -> None:
    value, problems = read(values.integer, "-3", minimum=0, maximum=10)
    assert value is None
    assert problems.items[0].message == "phải trong khoảng 0–10, nhận được -3"


@pytest.mark.parametrize(("raw", "expected"), [("52,5", 52.5), ("52.5", 52.5), (52.5, 52.5), ("8", 8.0)])
def test_decimals_accept_a_decimal_comma(raw: Any, expected: float) -> None:
    assert read(values.decimal, raw, minimum=0, maximum=400) == (expected, Problems())


def test_a_zero_weight_is_absent_not_zero() -> None:
    assert read(values.decimal, "0", minimum=0, maximum=400, zero_is_absent=True) == (None, Problems())


@pytest.mark.parametrize(
    ("raw", "expected"), [("5/3/2019", date(2019, 3, 5)), ("05/03/2019", date(2019, 3, 5))]
)
def test_dates_are_day_month_year_with_one_or_two_digits(raw: str, expected: date) -> None:
    assert read(values.dmy_date, raw) == (expected, Problems())


@pytest.mark.parametrize(
    ("raw", "code"),
    [("2019-03-05", "sai_dinh_dang"), ("31/02/2019", "khong_hop_le"), ("5/3/19", "sai_dinh_dang")],
)
def test_other_date_writings_are_refused(raw: str, code: str) -> None:
    value, problems = read(values.dmy_date, raw)
    assert value is None
    assert [p.code for p in problems] == [code]


def test_the_local_time_is_read_as_vietnam_time() -> None:
    value, problems = read(values.local_time, "2026-11-22 09:30:00")
    assert not problems
    assert value == datetime(2026, 11, 22, 2, 30).replace(tzinfo=value.tzinfo) + timedelta(hours=7)
    assert value.utcoffset() == timedelta(hours=7)
    assert value.isoformat() == "2026-11-22T09:30:00+07:00"


@pytest.mark.parametrize("raw", ["2026-11-22T09:30:00", "22/11/2026 09:30", "2026-02-30 10:00:00"])
def test_other_time_writings_are_refused(raw: str) -> None:
    value, problems = read(values.local_time, raw)
    assert value is None
    assert len(problems) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0912 345 678", "0912345678"), ("091.234.5678", "0912345678"), ("+84 912-345-678", "+84912345678")],
)
def test_phone_numbers_lose_their_separators(raw: str, expected: str) -> None:
    assert read(values.phone, raw) == (expected, Problems())


def test_a_phone_of_zeros_is_a_placeholder() -> None:
    assert read(values.phone, "0000000000") == (None, Problems())


def test_a_short_phone_is_refused() -> None:
    value, problems = read(values.phone, "12345")
    assert value is None
    assert "8 đến 15 chữ số" in problems.items[0].message


def test_text_refuses_lists_and_objects_and_long_values() -> None:
    _, problems = read(values.text, ["a"])
    assert problems.items[0].message == "phải là chuỗi ký tự"
    _, problems = read(values.text, "x" * 301)
    assert problems.items[0].code == "qua_dai"


def test_a_phone_sent_as_a_number_is_refused() -> None:
    value, problems = read(values.phone, 912345678)
    assert value is None
    assert problems.items[0].message == "số điện thoại phải gửi dạng chuỗi ký tự (để giữ số 0 ở đầu)"
