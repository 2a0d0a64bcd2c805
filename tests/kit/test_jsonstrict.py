"""Strict JSON: what a signature may be compared with."""

from __future__ import annotations

from typing import Any

import pytest

from kit.jsonstrict import StrictJsonError, canonical, parse_strict, same_json


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1, "a": 2}', b'{"a": NaN}', b"\xff\xfe{}", '{"a": "\\ud800"}', b"{'a': 1}", b'{"a": Infinity}'],
)
def test_strict_parsing_refuses_ambiguous_or_broken_json(raw: bytes | str) -> None:
    with pytest.raises(StrictJsonError):
        parse_strict(raw)


def test_strict_parsing_reads_vietnamese_text() -> None:
    assert parse_strict('{"ho_ten": "Đặng Thị Ngọc Ánh"}'.encode()) == {"ho_ten": "Đặng Thị Ngọc Ánh"}


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"a": True}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": None}, {}, False),
        ([1, 2], [2, 1], False),
        ({"a": "Hương"}, {"a": "Hu\u031bo\u031bng"}, False),  # no Unicode normalisation
    ],
)
def test_json_equality(left: Any, right: Any, equal: bool) -> None:
    assert same_json(left, right) is equal


def test_canonical_bytes_do_not_depend_on_order_or_number_writing() -> None:
    assert (
        canonical({"b": 10.0, "a": "Hà Nội"})
        == canonical({"a": "Hà Nội", "b": 10})
        == '{"a":"Hà Nội","b":10}'.encode()
    )
