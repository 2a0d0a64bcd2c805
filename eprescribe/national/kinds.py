"""The five prescription kinds, with the names a person reads."""

from __future__ import annotations

# The letter ends the prescription code and is `loai_don_thuoc` in the QĐ 808 dialect.
KIND_NAMES = {
    "c": "Đơn thuốc thông thường",
    "n": "Đơn thuốc gây nghiện",
    "h": "Đơn thuốc hướng thần, tiền chất",
    "y": "Đơn thuốc y học cổ truyền",
    "t": "Đơn thuốc thang",
}
KINDS = tuple(KIND_NAMES)
# Traditional medicine is counted in decoction packs (thang), one a day.
TRADITIONAL_KINDS = frozenset({"y", "t"})
