"""A stored prescription read back by pharmacy software through thong-tin-don-thuoc."""

from __future__ import annotations

from typing import Any

from eprescribe.national.mapping import to_payload
from eprescribe.national.stored import StoredPrescription
from pharmacy_gateway.national.reverse import read_answer
from tests.eprescribe.national.data import FACILITY, his_body, resolve, stored_from_payload


def stored(**options: Any) -> StoredPrescription:
    payload = to_payload(his_body(), facility_code=FACILITY, resolve=resolve).payload
    return stored_from_payload(payload, **options)


def test_the_read_answer_gives_back_what_the_his_sent() -> None:
    body = his_body()
    answer = read_answer(stored(status="partially_dispensed", dispensed={1: 8}), include_diagnoses=True)
    assert answer["ma_don_thuoc"] == body["ma_don_thuoc"]
    assert answer["loai_don_thuoc"] == "c"
    assert answer["trang_thai"] == "partially_dispensed"
    assert answer["ho_ten_benh_nhan"] == "Nguyễn Thị Thu Hương"
    assert answer["ngay_sinh_benh_nhan"] == "05/03/1987"
    assert answer["gioi_tinh"] == 3
    assert answer["loi_dan"] == body["loi_dan"]
    assert answer["luu_y"] == body["luu_y"]
    assert answer["ngay_gio_ke_don"] == body["ngay_gio_ke_don"]
    assert answer["ngay_het_han"] == "2026-11-26 23:59:59"
    assert answer["ngay_tai_kham"] == 7
    assert answer["ten_bac_si"] == "Trần Văn Bình"
    assert answer["ten_co_so_kham_chua_benh"] == "Bệnh viện Đa khoa Xanh Pôn"
    assert answer["chan_doan"] == [
        {"ma_chan_doan": "J02.9", "ten_chan_doan": "Viêm họng cấp", "ket_luan": ""},
        {"ma_chan_doan": "K29.7", "ten_chan_doan": "Viêm dạ dày", "ket_luan": ""},
    ]
    first, second = answer["thong_tin_don_thuoc"]
    assert first == {
        "id": 7_000_000_001,
        "ma_thuoc": "VD-15841-13",
        "biet_duoc": "",
        "ten_thuoc": "Paracetamol 500mg",
        "don_vi_tinh": "viên",
        "so_luong": 20,
        "cach_dung": body["thong_tin_don_thuoc"][0]["cach_dung"],
        "so_luong_con_lai": 12,
    }
    assert second["so_luong_con_lai"] == second["so_luong"] == 14


def test_every_line_has_exactly_eight_keys() -> None:
    # A widely used pharmacy program binds the lines to a grid only with 7 or 8 columns.
    for line in read_answer(stored(), include_diagnoses=False)["thong_tin_don_thuoc"]:
        assert len(line) == 8


def test_diagnoses_are_shown_only_when_the_caller_allows() -> None:
    assert read_answer(stored(), include_diagnoses=False)["chan_doan"] == []


def test_hiv_prescriptions_show_initials_and_no_diagnoses() -> None:
    answer = read_answer(stored(sensitive=True), include_diagnoses=True)
    assert answer["ho_ten_benh_nhan"] == "N. T. T. H."
    assert answer["chan_doan"] == []


def test_no_follow_up_is_an_empty_string() -> None:
    payload = to_payload(his_body(ngay_tai_kham=""), facility_code=FACILITY, resolve=resolve).payload
    assert read_answer(stored_from_payload(payload), include_diagnoses=False)["ngay_tai_kham"] == ""
