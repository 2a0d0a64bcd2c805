"""cap-nhat-don-thuoc reports written the way pharmacy software writes them."""

from __future__ import annotations

from typing import Any

import pytest

from eprescribe.national.mapping import to_payload
from eprescribe.national.problems import MappingError
from eprescribe.national.stored import StoredPrescription
from pharmacy_gateway.national.reverse import read_answer
from pharmacy_gateway.national.sale import dispense_items, parse_sale
from tests.eprescribe.national.data import FACILITY, his_body, resolve, stored_from_payload


def stored() -> StoredPrescription:
    return stored_from_payload(to_payload(his_body(), facility_code=FACILITY, resolve=resolve).payload)


def report_from_read_answer(rx: StoredPrescription, sold: list[str]) -> dict[str, Any]:
    """Echo the read answer's lines back with so_luong_ban, every value a string, as one program does."""
    lines = read_answer(rx, include_diagnoses=False)["thong_tin_don_thuoc"]
    return {
        "ma_don_thuoc": rx.code.lower(),
        "thong_tin_thuoc": [
            {
                "ma_thuoc_da_ke_don": str(line["id"]),
                "ma_thuoc": line["ma_thuoc"],
                "biet_duoc": line["biet_duoc"],
                "ten_thuoc": line["ten_thuoc"],
                "don_vi_tinh": line["don_vi_tinh"],
                "so_luong": str(line["so_luong"]),
                "cach_dung": line["cach_dung"],
                "so_luong_ban": quantity,
            }
            for line, quantity in zip(lines, sold, strict=True)
        ],
        "ma_dinh_danh_co_so_cung_ung_thuoc": "01NT4F7K2Q",
        "ten_co_so_cung_ung_thuoc": "Nhà thuốc Minh Châu",
        "so_dien_thoai_co_so_cung_ung_thuoc": "024 3826 1234",
        "dia_chi_co_so_cung_ung_thuoc": "25 phố Huế, quận Hai Bà Trưng, Hà Nội",
        "ma_hoa_don": "HD2026112200017",
    }


def test_a_partial_sale_becomes_dispense_items() -> None:
    rx = stored()
    report = parse_sale(report_from_read_answer(rx, ["10", "0"]))
    assert report.code == "25366VMA336R-c"
    assert report.outlet.code == "01NT4F7K2Q"
    assert report.outlet.phone == "02438261234"
    assert report.invoice_no == "HD2026112200017"
    assert [(line.line_id, line.registration_no, line.quantity) for line in report.lines] == [
        (7_000_000_001, "VD-15841-13", 10)
    ]
    assert dispense_items(report, rx) == [{"line_no": 1, "registration_no": "VD-15841-13", "quantity": 10}]


def test_a_substitute_product_is_reported_as_sold() -> None:
    rx = stored()
    body = report_from_read_answer(rx, ["20", "14"])
    body["thong_tin_thuoc"][0]["ma_thuoc"] = "VD-31944-18"  # Hapacol 500 instead of Partamol 500
    items = dispense_items(parse_sale(body), rx)
    assert items[0]["registration_no"] == "VD-31944-18"
    assert items[1] == {"line_no": 2, "registration_no": "893110693373", "quantity": 14}


def test_a_resent_report_has_the_same_idempotency_key() -> None:
    rx = stored()
    first = parse_sale(report_from_read_answer(rx, ["10", "0"])).idempotency_key()
    assert parse_sale(report_from_read_answer(rx, ["10", "0"])).idempotency_key() == first
    assert parse_sale(report_from_read_answer(rx, ["9", "0"])).idempotency_key() != first


def test_every_problem_of_a_report_is_listed() -> None:
    body = {
        "ma_don_thuoc": "không rõ",
        "thong_tin_thuoc": [
            {"ma_thuoc_da_ke_don": "QG-AMOX-500", "ma_thuoc": "893110693373", "so_luong_ban": 10},
            {"ma_thuoc_da_ke_don": "7000000001", "ma_thuoc": "", "so_luong_ban": "2.5"},
            {"ma_thuoc_da_ke_don": "7000000002", "ma_thuoc": "VD-15841-13", "so_luong_ban": "-1"},
        ],
        "ma_dinh_danh_co_so_cung_ung_thuoc": "",
    }
    with pytest.raises(MappingError) as caught:
        parse_sale(body)
    assert {p.field for p in caught.value.problems} == {
        "ma_don_thuoc",
        "ma_dinh_danh_co_so_cung_ung_thuoc",
        "thong_tin_thuoc.0.ma_thuoc_da_ke_don",
        "thong_tin_thuoc.1.so_luong_ban",
        "thong_tin_thuoc.2.so_luong_ban",
    }


def test_a_report_selling_nothing_is_refused() -> None:
    with pytest.raises(MappingError) as caught:
        parse_sale(report_from_read_answer(stored(), ["0", ""]))
    assert [p.field for p in caught.value.problems] == ["thong_tin_thuoc.1.so_luong_ban"]
    with pytest.raises(MappingError) as caught:
        parse_sale(report_from_read_answer(stored(), ["0", "0"]))
    assert [p.message for p in caught.value.problems] == [
        "không có thuốc nào có số lượng bán (so_luong_ban) lớn hơn 0"
    ]


def test_a_line_of_another_prescription_is_refused() -> None:
    rx = stored()
    body = report_from_read_answer(rx, ["1", "0"])
    body["thong_tin_thuoc"][0]["ma_thuoc_da_ke_don"] = "42"
    with pytest.raises(MappingError) as caught:
        dispense_items(parse_sale(body), rx)
    assert caught.value.problems[0].field == "thong_tin_thuoc.0.ma_thuoc_da_ke_don"
    other = parse_sale({**report_from_read_answer(rx, ["1", "0"]), "ma_don_thuoc": "25366AAAAAAA-c"})
    with pytest.raises(MappingError):
        dispense_items(other, rx)
