"""The sign-in and doctor bodies are strict: they carry credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eprescribe.national import answers
from eprescribe.national.problems import from_validation_error
from eprescribe.national.schemas import BacSi, DangNhapBacSi, DangNhapCoSoKhamChuaBenh


def test_a_doctor_sign_in_is_read_and_its_password_hidden() -> None:
    body = DangNhapBacSi.model_validate(
        {
            "ma_lien_thong_co_so_kham_chua_benh": " 0125366 ",
            "ma_lien_thong_bac_si": "01002245HNO-CCHNT",
            "password": "Mật-khẩu-1",
        }
    )
    assert body.ma_lien_thong_co_so_kham_chua_benh == "0125366"
    assert body.password.get_secret_value() == "Mật-khẩu-1"
    assert "Mật-khẩu-1" not in repr(body)


def test_them_bac_si_ignores_the_login_fields_his_software_sends_with_it() -> None:
    body = BacSi.model_validate(
        {
            "ma_lien_thong_bac_si": "01002245HNO-CCHNT",
            "ma_lien_thong_co_so_kham_chua_benh": "0125366",
            "password": "x",
        }
    )
    assert body.model_dump() == {"ma_lien_thong_bac_si": "01002245HNO-CCHNT"}


def test_a_connection_code_sent_as_a_number_is_refused_in_vietnamese() -> None:
    with pytest.raises(ValidationError) as caught:
        DangNhapCoSoKhamChuaBenh.model_validate(
            {"ma_lien_thong_co_so_kham_chua_benh": 125366, "password": ""}
        )
    problems = from_validation_error(caught.value)
    assert {(p.field, p.message) for p in problems} == {
        ("ma_lien_thong_co_so_kham_chua_benh", "phải là chuỗi ký tự"),
        ("password", "không được để trống"),
    }
    answer = answers.sign_in_refused("Đăng nhập không thành công", problems)
    assert answer["success"] == "Đăng nhập không thành công"
    assert answer["error"]["password"] == ["không được để trống"]
    assert len(answer["danh_sach_cac_loi"]) == 2


def test_a_token_answer_is_bearer() -> None:
    assert answers.token("eyJ...") == {"token": "eyJ...", "token_type": "bearer"}
    assert answers.sale_recorded() == {"success": "Cập nhật đơn thuốc thành công"}
