"""The invented country the bench seeds: provinces, names, streets, diagnoses, and the catalogue.

Plain data and small helpers; every random choice goes through the seed's one `random.Random`,
so a plan seeds the same world every time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import jose, project

PROVINCES = {
    "01": (21.028, 105.834, 10.0),
    "79": (10.776, 106.700, 12.0),
    "31": (20.845, 106.688, 3.0),
    "48": (16.054, 108.202, 2.5),
    "92": (10.045, 105.747, 2.0),
    "75": (10.957, 106.843, 2.5),
    "38": (19.807, 105.776, 2.5),
    "40": (18.679, 105.681, 2.5),
    "46": (16.463, 107.590, 1.5),
    "56": (12.238, 109.196, 1.2),
    "66": (12.667, 108.038, 1.0),
    "22": (20.959, 107.043, 1.5),
    "24": (21.230, 106.130, 1.0),
    "19": (21.594, 105.848, 1.0),
    "86": (10.253, 105.972, 1.0),
    "96": (9.177, 105.150, 1.0),
}
FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Thu", "Quang", "Hoài", "Gia", "Bảo"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Hải", "Hạnh", "Hùng", "Lan", "Linh", "Long", "Mai", "Nam"]
GIVEN += ["Nga", "Phúc", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Trung", "Tuấn", "Vân", "Yến"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung"]
STREETS += ["Điện Biên Phủ", "Hùng Vương", "Nguyễn Huệ", "Phan Chu Trinh", "Lê Duẩn", "Giải Phóng"]
OUTLET_NAMES = ["An Khang", "Bình An", "Minh Châu", "Phúc Thịnh", "Tâm Đức", "Hồng Phát", "Thiện Tâm"]
OUTLET_NAMES += ["Gia Bảo", "Hoàng Long", "Ngọc Lan", "Kim Anh", "Thanh Bình", "Việt Mỹ", "Mai Linh"]
KIND_NAMES = {"pharmacy": "Nhà thuốc", "drugstore": "Quầy thuốc", "cabinet": "Tủ thuốc Trạm y tế"}
KIND_PREFIX = {"pharmacy": "NT", "drugstore": "QT", "cabinet": "TT"}
# Common outpatient diagnoses (none chronic, none HIV): 30 days of supply at most is allowed.
DIAGNOSES = [
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp"),
    ("J02.9", "Viêm họng cấp"),
    ("J20.9", "Viêm phế quản cấp"),
    ("K29.7", "Viêm dạ dày"),
    ("M54.5", "Đau thắt lưng"),
    ("R51", "Đau đầu"),
    ("L30.9", "Viêm da"),
    ("H10.9", "Viêm kết mạc"),
    ("N39.0", "Nhiễm khuẩn đường tiết niệu"),
    ("A09", "Tiêu chảy và viêm dạ dày ruột"),
]
INSTRUCTIONS = ["Uống 1 viên x 2 lần/ngày sau ăn", "Uống 1 viên buổi sáng", "Uống 2 viên x 3 lần/ngày"]
KIND_WEIGHTS = {"c": 0.92, "h": 0.03, "n": 0.01, "y": 0.03, "t": 0.01}
CATEGORY_WEIGHT = {"normal": 1.0, "supplement": 0.9, "traditional": 0.6}


@dataclass
class Drug:
    id: int
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None


def read_catalogue() -> list[dict[str, Any]]:
    with project.catalogue_csv().open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def random_code(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(project.CODE_ALPHABET) for _ in range(length))


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an EC public key."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return jose.b64url(hashlib.sha256(canonical.encode()).digest())


def registration_for(drugs: Sequence[Drug], line: dict[str, Any]) -> str:
    key = (
        project.match_key(line["active_ingredient"]),
        project.match_key(line["strength"]),
        project.match_key(line["dosage_form"]),
    )
    for d in drugs:
        if (
            project.match_key(d.active_ingredient),
            project.match_key(d.strength),
            project.match_key(d.dosage_form),
        ) == key:
            return d.registration_no
    raise RuntimeError("no product for the hot line")


def round_price(value: float) -> int:
    step = 100 if value >= 2000 else 10
    return max(step, round(value / step) * step)
