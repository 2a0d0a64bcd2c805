"""Bodies of the QĐ 808 dialect with its exact field names, as existing HIS software writes them.

Scalars are loose on purpose: existing clients send numbers as strings or numbers and "" for what
they lack. `eprescribe.national.reader` shapes a raw body into these models and the mapping modules
read every value strictly from there.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kit.fields import Screened

# A scalar as HIS software writes it: "10", 10, 10.0, "" or null.
Loose = str | int | float | None

MSG_SUBMITTED = "Gửi đơn thuốc thành công"
MSG_SALE_RECORDED = "Cập nhật đơn thuốc thành công"


class DialectBody(Screened):
    """A dialect object: unknown fields are kept aside (and reported as ignored), never an error."""

    model_config = ConfigDict(extra="allow")
    # Fields holding a list of objects, and fields holding one object, by their model.
    list_fields: ClassVar[dict[str, type[DialectBody]]] = {}
    object_fields: ClassVar[dict[str, type[DialectBody]]] = {}


# ---- gui-don-thuoc -------------------------------------------------------------------------


class ChanDoan(DialectBody):
    ma_chan_doan: Loose = Field(None, description="ICD-10; several codes may be separated by ';'")
    ten_chan_doan: Loose = None
    ket_luan: Loose = None


class DotDungThuoc(DialectBody):
    dot: Loose = None
    tu_ngay: Loose = Field(None, description="d/m/Y")
    den_ngay: Loose = Field(None, description="d/m/Y")
    so_thang_thuoc: Loose = Field(None, description="number of decoction packs (traditional medicine)")


class ThuocKeDon(DialectBody):
    ma_thuoc: Loose = Field(None, description="registration number of the national catalogue")
    biet_duoc: Loose = None
    ten_thuoc: Loose = Field(None, description="active ingredient and strength, e.g. 'Paracetamol 500mg'")
    don_vi_tinh: Loose = None
    so_luong: Loose = None
    cach_dung: Loose = None


class GuiDonThuoc(DialectBody):
    """The body of `POST /api/v1/gui-don-thuoc`."""

    list_fields: ClassVar[dict[str, type[DialectBody]]] = {
        "chan_doan": ChanDoan,
        "thong_tin_don_thuoc": ThuocKeDon,
    }
    object_fields: ClassVar[dict[str, type[DialectBody]]] = {"dot_dung_thuoc": DotDungThuoc}

    loai_don_thuoc: Loose = Field(None, description="c, n, h, y or t")
    ma_don_thuoc: Loose = None
    ho_ten_benh_nhan: Loose = None
    ngay_sinh_benh_nhan: Loose = Field(None, description="d/m/Y")
    gioi_tinh: Loose = Field(None, description="1 unknown, 2 male, 3 female")
    ma_dinh_danh_y_te: Loose = None
    ma_dinh_danh_cong_dan: Loose = None
    ma_so_the_bao_hiem_y_te: Loose = None
    can_nang: Loose = None
    thong_tin_nguoi_giam_ho: Loose = None
    dia_chi: Loose = None
    chan_doan: list[ChanDoan] = Field(default_factory=list)
    luu_y: Loose = None
    hinh_thuc_dieu_tri: Loose = None
    dot_dung_thuoc: DotDungThuoc | None = None
    thong_tin_don_thuoc: list[ThuocKeDon] = Field(default_factory=list)
    loi_dan: Loose = None
    so_dien_thoai_nguoi_kham_benh: Loose = None
    ngay_tai_kham: Loose = Field(None, description="days after the issue date")
    ngay_gio_ke_don: Loose = Field(None, description="yyyy-MM-dd HH:mm:ss, Vietnam time")
    signature: Loose = Field(None, description="compact JWS (ES256) of the body without `signature`")


# ---- cap-nhat-don-thuoc --------------------------------------------------------------------


class ThuocDaBan(DialectBody):
    ma_thuoc_da_ke_don: Loose = Field(None, description="the `id` of the prescribed line")
    ma_thuoc: Loose = Field(None, description="registration number of the product sold")
    biet_duoc: Loose = None
    ten_thuoc: Loose = None
    don_vi_tinh: Loose = None
    so_luong: Loose = Field(None, description="prescribed quantity (an echo)")
    cach_dung: Loose = None
    so_luong_ban: Loose = Field(None, description="quantity sold now")


class CapNhatDonThuoc(DialectBody):
    """The body of `POST /api/v1/cap-nhat-don-thuoc`."""

    list_fields: ClassVar[dict[str, type[DialectBody]]] = {"thong_tin_thuoc": ThuocDaBan}

    ma_don_thuoc: Loose = None
    thong_tin_thuoc: list[ThuocDaBan] = Field(default_factory=list)
    ma_dinh_danh_co_so_cung_ung_thuoc: Loose = None
    ten_co_so_cung_ung_thuoc: Loose = None
    so_dien_thoai_co_so_cung_ung_thuoc: Loose = None
    dia_chi_co_so_cung_ung_thuoc: Loose = None
    ma_hoa_don: Loose = None


# ---- sign-ins and doctors (strict: these are credentials) ------------------------------------

ConnectionCode = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[SecretStr, Field(min_length=1, max_length=256)]


class Credentials(Screened):
    # Extra fields are ignored: HIS software sends the whole login object to them-bac-si.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class DangNhapCoSoKhamChuaBenh(Credentials):
    """The body of `POST /api/auth/dang-nhap-co-so-kham-chua-benh`."""

    ma_lien_thong_co_so_kham_chua_benh: ConnectionCode
    password: Password


class DangNhapBacSi(Credentials):
    """The body of `POST /api/auth/dang-nhap-bac-si`."""

    ma_lien_thong_co_so_kham_chua_benh: ConnectionCode
    ma_lien_thong_bac_si: ConnectionCode
    password: Password


class BacSi(Credentials):
    """The body of `POST /api/v1/them-bac-si` and `POST /api/v1/xoa-bac-si`."""

    ma_lien_thong_bac_si: ConnectionCode


class TokenAnswer(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret


# ---- answers -------------------------------------------------------------------------------


class Loi(BaseModel):
    """One entry of `danh_sach_cac_loi`: the field (Laravel dotted path), a code and a message."""

    truong: str
    ma_loi: str
    thong_bao: str


class SubmitAnswer(BaseModel):
    success: str = MSG_SUBMITTED  # a string, not a boolean, and the first key (clients read it first)
    checksum: str
    ma_don_thuoc: str


class FailureAnswer(BaseModel):
    success: str
    danh_sach_cac_loi: list[Loi]


class ChanDoanView(BaseModel):
    ma_chan_doan: str
    ten_chan_doan: str
    ket_luan: str


class DongThuocView(BaseModel):
    """A line of `thong-tin-don-thuoc`: exactly eight keys (see docs/national-protocol.md)."""

    id: int
    ma_thuoc: str
    biet_duoc: str
    ten_thuoc: str
    don_vi_tinh: str
    so_luong: int
    cach_dung: str
    so_luong_con_lai: int


class ThongTinDonThuoc(BaseModel):
    """The answer of `GET /api/v1/thong-tin-don-thuoc/{ma_don_thuoc}`."""

    ma_don_thuoc: str
    loai_don_thuoc: str
    trang_thai: str
    ho_ten_benh_nhan: str
    ngay_sinh_benh_nhan: str
    gioi_tinh: int
    chan_doan: list[ChanDoanView]
    loi_dan: str
    luu_y: str
    ten_bac_si: str
    ten_co_so_kham_chua_benh: str
    ngay_gio_ke_don: str
    ngay_het_han: str
    ngay_tai_kham: int | str
    thong_tin_don_thuoc: list[DongThuocView]
