"""gui-don-thuoc bodies written the way HIS software writes them, mapped to the contract payload."""

from __future__ import annotations

from typing import Any

import pytest

from eprescribe.prescriptions.schemas import PrescriptionPayload
from interop.problems import MappingError
from interop.qd808 import answers
from interop.qd808.mapping import compose_notes, registration_numbers, split_notes, to_payload
from kit import jsonstrict
from tests.interop.data import FACILITY, body_of_kind, his_body, resolve


def payload_of(body: dict[str, Any]) -> dict[str, Any]:
    submission = to_payload(body, facility_code=FACILITY, resolve=resolve)
    PrescriptionPayload.model_validate(submission.payload)  # the contract accepts what we produce
    return submission.payload


def problems_of(body: Any) -> dict[str, str]:
    with pytest.raises(MappingError) as caught:
        to_payload(body, facility_code=FACILITY, resolve=resolve)
    return {p.field: p.message for p in caught.value.problems}


def test_a_his_body_maps_to_a_valid_payload() -> None:
    payload = payload_of(his_body())
    assert payload["code"] == "25366VMA336R-c"
    assert payload["kind"] == "c"
    assert payload["facility_code"] == FACILITY
    assert payload["issued_at"] == "2026-11-22T09:30:00+07:00"
    assert payload["patient"] == {
        "full_name": "Nguyễn Thị Thu Hương",
        "date_of_birth": "1987-03-05",
        "gender": "female",
        "national_id": "001187012345",
        "insurance_no": "GD4797932146557",
        "weight_kg": 52.5,
        "phone": "0912345678",
        "address": "Số 12 ngõ 34 phố Trần Duy Hưng, phường Trung Hòa, quận Cầu Giấy, Hà Nội",
    }
    assert payload["diagnoses"] == [
        {"icd10": "J02.9", "text": "Viêm họng cấp"},
        {"icd10": "K29.7", "text": "Viêm dạ dày"},
    ]
    first, second = payload["items"]
    assert first == {
        "active_ingredient": "paracetamol",
        "strength": "500mg",
        "dosage_form": "viên nén",
        "registration_no": "VD-15841-13",
        "quantity": 20,
        "unit": "viên",
        "instructions": "Uống 1 viên khi sốt trên 38,5 độ, cách nhau ít nhất 4 giờ",
        "days_supply": 7,  # 22/11 to 28/11, both days counted
    }
    assert second["quantity"] == 14
    assert (
        payload["notes"]
        == "Uống nhiều nước, nghỉ ngơi; tái khám nếu sốt kéo dài\nLưu ý: Không dùng chung với rượu bia"
    )
    assert payload["follow_up_date"] == "2026-11-29"


@pytest.mark.parametrize("kind", ["c", "n", "h", "y", "t"])
def test_every_kind_maps(kind: str) -> None:
    payload = payload_of(body_of_kind(kind))
    assert payload["kind"] == kind
    assert payload["code"].endswith(f"-{kind}")


def test_numbers_may_be_numbers_and_absent_values_null() -> None:
    body = his_body(
        gioi_tinh=2, can_nang=18, ngay_tai_kham=0, ma_dinh_danh_cong_dan=None, luu_y=None, signature=None
    )
    payload = payload_of(body)
    assert payload["patient"]["gender"] == "male"
    assert payload["patient"]["weight_kg"] == 18.0
    assert "national_id" not in payload["patient"]
    assert "follow_up_date" not in payload  # 0 days: no follow-up visit
    assert payload["notes"] == "Uống nhiều nước, nghỉ ngơi; tái khám nếu sốt kéo dài"


def test_unknown_gender_is_other_and_empty_optionals_are_left_out() -> None:
    body = his_body(
        gioi_tinh="1",
        ma_so_the_bao_hiem_y_te="",
        can_nang="0",
        dia_chi="",
        loi_dan="",
        luu_y="",
        so_dien_thoai_nguoi_kham_benh="0000000000",
    )
    patient = payload_of(body)["patient"]
    assert patient["gender"] == "other"
    assert set(patient) == {"full_name", "date_of_birth", "gender", "national_id"}


def test_a_guardian_is_kept_whole_as_free_text() -> None:
    body = his_body(
        ngay_sinh_benh_nhan="14/8/2023",
        can_nang="11,2",
        thong_tin_nguoi_giam_ho="Phạm Văn Đức, 0987654321, bố",
    )
    patient = payload_of(body)["patient"]
    assert patient["guardian"] == {"full_name": "Phạm Văn Đức, 0987654321, bố"}
    assert patient["date_of_birth"] == "2023-08-14"


def test_dot_dung_thuoc_as_a_one_element_list_is_accepted() -> None:
    body = his_body(dot_dung_thuoc=[{"dot": 1, "tu_ngay": "1/12/2026", "den_ngay": "30/12/2026"}])
    assert {item["days_supply"] for item in payload_of(body)["items"]} == {30}


def test_decoction_packs_count_one_a_day() -> None:
    assert payload_of(body_of_kind("t"))["items"][0]["days_supply"] == 10


def test_packs_on_an_ordinary_prescription_are_refused() -> None:
    body = his_body(dot_dung_thuoc={"dot": "1", "tu_ngay": "", "den_ngay": "", "so_thang_thuoc": "5"})
    assert "chỉ dùng cho đơn y học cổ truyền" in problems_of(body)["dot_dung_thuoc.so_thang_thuoc"]


def test_icd_codes_without_a_dot_or_in_lower_case_are_normalised() -> None:
    body = his_body(
        chan_doan=[
            {"ma_chan_doan": "j069, k297", "ten_chan_doan": "Viêm đường hô hấp trên cấp", "ket_luan": ""}
        ]
    )
    assert [d["icd10"] for d in payload_of(body)["diagnoses"]] == ["J06.9", "K29.7"]


def test_a_conclusion_stands_in_for_a_missing_diagnosis_name() -> None:
    body = his_body(
        chan_doan={"ma_chan_doan": "E11.9", "ten_chan_doan": "", "ket_luan": "Đái tháo đường type 2"}
    )
    assert payload_of(body)["diagnoses"] == [{"icd10": "E11.9", "text": "Đái tháo đường type 2"}]


def test_unknown_fields_are_ignored_and_reported() -> None:
    body = his_body(ma_so_chung_minh_thu="012345678", isbuy=0)
    body["thong_tin_don_thuoc"][0]["loai_don_thuoc"] = "c"
    submission = to_payload(body, facility_code=FACILITY, resolve=resolve)
    assert set(submission.ignored_fields) == {
        "ma_so_chung_minh_thu",
        "isbuy",
        "thong_tin_don_thuoc.0.loai_don_thuoc",
    }


def test_every_problem_is_listed_at_once_in_vietnamese() -> None:
    garbage = {
        "loai_don_thuoc": "x",
        "ma_don_thuoc": "ABC",
        "ho_ten_benh_nhan": "",
        "ngay_sinh_benh_nhan": "1987-03-05",
        "gioi_tinh": "4",
        "ma_dinh_danh_cong_dan": 1187012345,
        "ma_so_the_bao_hiem_y_te": "4797932146",
        "can_nang": "nặng",
        "chan_doan": [{"ma_chan_doan": "viêm họng", "ten_chan_doan": "Viêm họng"}],
        "dot_dung_thuoc": {"tu_ngay": "28/11/2026", "den_ngay": "22/11/2026"},
        "thong_tin_don_thuoc": [
            {"ma_thuoc": "VD-00000-00", "so_luong": "2.5", "cach_dung": ""},
            {"ma_thuoc": "VD-15841-13", "don_vi_tinh": "Hộp", "so_luong": "2", "cach_dung": "Uống"},
            "Paracetamol",
        ],
        "so_dien_thoai_nguoi_kham_benh": "12",
        "ngay_tai_kham": "-7",
        "ngay_gio_ke_don": "22/11/2026 09:30",
        "hinh_thuc_dieu_tri": True,
    }
    found = problems_of(garbage)
    assert set(found) == {
        "loai_don_thuoc",
        "ma_don_thuoc",
        "ho_ten_benh_nhan",
        "ngay_sinh_benh_nhan",
        "gioi_tinh",
        "ma_dinh_danh_cong_dan",
        "ma_so_the_bao_hiem_y_te",
        "can_nang",
        "chan_doan.0.ma_chan_doan",
        "dot_dung_thuoc.den_ngay",
        "thong_tin_don_thuoc.0.ma_thuoc",
        "thong_tin_don_thuoc.0.so_luong",
        "thong_tin_don_thuoc.0.cach_dung",
        "thong_tin_don_thuoc.1.don_vi_tinh",
        "thong_tin_don_thuoc.2",
        "so_dien_thoai_nguoi_kham_benh",
        "ngay_tai_kham",
        "ngay_gio_ke_don",
        "hinh_thuc_dieu_tri",
    }
    assert found["ma_dinh_danh_cong_dan"].endswith(
        "(gửi dạng chuỗi để giữ các số 0 ở đầu), nhận được '1187012345'"
    )
    assert found["thong_tin_don_thuoc.1.don_vi_tinh"].startswith(
        "đơn vị tính 'Hộp' khác đơn vị của thuốc trong danh mục"
    )
    assert (
        found["thong_tin_don_thuoc.0.ma_thuoc"]
        == "không có thuốc số đăng ký VD-00000-00 trong danh mục thuốc quốc gia"
    )
    assert found["dot_dung_thuoc.den_ngay"] == "đến ngày phải bằng hoặc sau từ ngày"


def test_an_empty_body_lists_every_required_field() -> None:
    found = problems_of({})
    for name in (
        "loai_don_thuoc",
        "ma_don_thuoc",
        "ho_ten_benh_nhan",
        "ngay_sinh_benh_nhan",
        "gioi_tinh",
        "chan_doan",
    ):
        assert name in found
    assert {"dot_dung_thuoc", "thong_tin_don_thuoc", "ngay_gio_ke_don"} <= set(found)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert problems_of(["không phải đơn thuốc"])[""] == "nội dung gửi lên phải là một đối tượng JSON"


def test_the_code_must_belong_to_the_facility_and_the_kind() -> None:
    found = problems_of(his_body(ma_don_thuoc="01001vma336r-N"))
    assert found["ma_don_thuoc"] == "mã đơn thuốc phải kết thúc bằng '-c', đúng loại đơn thuốc"
    with pytest.raises(MappingError) as caught:
        to_payload(his_body(ma_don_thuoc="01001VMA336R-c"), facility_code=FACILITY, resolve=resolve)
    assert [p.message for p in caught.value.problems] == ["mã đơn thuốc phải bắt đầu bằng mã cơ sở 25366"]


def test_a_code_in_lower_case_is_stored_canonical() -> None:
    assert payload_of(his_body(ma_don_thuoc="25366vma336r-C", loai_don_thuoc="C"))["code"] == "25366VMA336R-c"


def test_two_rounds_are_refused() -> None:
    body = his_body(
        dot_dung_thuoc=[
            {"tu_ngay": "1/12/2026", "den_ngay": "7/12/2026"},
            {"tu_ngay": "8/12/2026", "den_ngay": "14/12/2026"},
        ]
    )
    assert problems_of(body)["dot_dung_thuoc"] == "chỉ được gửi một đợt dùng thuốc cho mỗi đơn"


def test_a_round_needs_both_dates() -> None:
    body = his_body(dot_dung_thuoc={"dot": "1", "tu_ngay": "22/11/2026", "den_ngay": ""})
    assert problems_of(body) == {"dot_dung_thuoc.den_ngay": "cần cả từ ngày và đến ngày"}


def test_registration_numbers_lists_what_the_catalogue_must_resolve() -> None:
    body = his_body()
    body["thong_tin_don_thuoc"].append(dict(body["thong_tin_don_thuoc"][0]))
    assert registration_numbers(body) == ["VD-15841-13", "893110693373"]


def test_the_checksum_ignores_key_order_white_space_and_the_signature() -> None:
    body = his_body()
    reordered = dict(reversed(list(his_body(signature="eyJhbGciOiJFUzI1NiJ9.e30.c2ln").items())))
    first = to_payload(body, facility_code=FACILITY, resolve=resolve).checksum
    assert to_payload(reordered, facility_code=FACILITY, resolve=resolve).checksum == first
    assert first == jsonstrict.checksum({k: v for k, v in body.items() if k != "signature"})
    assert len(first) == 64
    changed = his_body(loi_dan="Khác")
    assert to_payload(changed, facility_code=FACILITY, resolve=resolve).checksum != first


@pytest.mark.parametrize(
    ("advice", "caution"),
    [
        ("Ăn nhẹ", "Tránh lái xe"),
        ("Ăn nhẹ", None),
        (None, "Tránh lái xe"),
        (None, None),
        ("Dòng 1\nDòng 2", "A\nB"),
    ],
)
def test_notes_split_back_into_advice_and_caution(advice: str | None, caution: str | None) -> None:
    assert split_notes(compose_notes(advice, caution)) == (advice or "", caution or "")


def test_the_answers_put_success_first() -> None:
    submission = to_payload(his_body(), facility_code=FACILITY, resolve=resolve)
    answer = answers.submitted(submission, "25366VMA336R-c")
    assert list(answer) == ["success", "checksum", "ma_don_thuoc"]
    assert answer["success"] == "Gửi đơn thuốc thành công"
    with pytest.raises(MappingError) as caught:
        to_payload(his_body(gioi_tinh="9", so_luong=""), facility_code=FACILITY, resolve=resolve)
    refused = answers.refused(caught.value)
    assert list(refused) == ["success", "danh_sach_cac_loi"]
    assert refused["success"] == "Đơn thuốc không hợp lệ: có 1 lỗi, xem danh_sach_cac_loi"
    assert refused["danh_sach_cac_loi"] == [
        {
            "truong": "gioi_tinh",
            "ma_loi": "khong_hop_le",
            "thong_bao": "giới tính phải là 1 (chưa xác định), 2 (nam) hoặc 3 (nữ), nhận được 9",
        }
    ]
    used = answers.code_in_use("25366VMA336R-c")
    assert used["success"] == "Mã đơn thuốc 25366VMA336R-c đã được sử dụng trước đó"
    assert used["danh_sach_cac_loi"][0]["truong"] == "ma_don_thuoc"


def test_contract_errors_point_back_at_dialect_fields() -> None:
    submission = to_payload(his_body(), facility_code=FACILITY, resolve=resolve)
    assert answers.dialect_loc(submission, ["payload", "items", 1, "days_supply"]) == ("dot_dung_thuoc",)
    assert answers.dialect_loc(submission, ["payload", "items", 0, "active_ingredient"]) == (
        "thong_tin_don_thuoc",
        0,
        "ma_thuoc",
    )
    assert answers.dialect_loc(submission, ["payload", "patient", "national_id"]) == (
        "ma_dinh_danh_cong_dan",
    )
    assert answers.dialect_loc(submission, ["payload", "diagnoses", 1]) == ("chan_doan", 0, "ma_chan_doan")
    assert answers.dialect_loc(submission, ["payload", "follow_up_date"]) == ("ngay_tai_kham",)


def test_a_code_whose_paired_name_is_empty_is_reported_not_dropped() -> None:
    body = his_body(
        chan_doan=[{"ma_chan_doan": "J02.9;K29.7", "ten_chan_doan": "Viêm họng cấp;", "ket_luan": ""}]
    )
    assert problems_of(body) == {"chan_doan.0.ten_chan_doan": "thiếu tên chẩn đoán cho mã K29.7"}
