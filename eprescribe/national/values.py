"""Lenient readers of the dialect's scalars: strings for numbers, "" for absent, d/m/Y dates.

Each reader returns the value, or None when the value is absent or wrong; a wrong value is also
recorded as a Vietnamese problem, so nothing wrong is ever silently dropped.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from eprescribe.national.problems import FORMAT, INVALID, REQUIRED, TOO_LONG, Loc, Problems
from kit.time import VIETNAM_TIME

# HIS software fills fields it lacks with "", ".", "-" or "/" (one widely used HIS writes "."
# for every empty drug field): such values mean "absent", never a real value.
_PLACEHOLDER = re.compile(r"^[\s.\-_/]*$")
_INTEGER = re.compile(r"^[+-]?\d+(?:[.,]0+)?$")
_DECIMAL = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_LOCAL_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")


def is_absent(raw: Any) -> bool:
    """Tell whether a raw value means "nothing" in the dialect."""
    return raw is None or (isinstance(raw, str) and _PLACEHOLDER.match(raw) is not None)


def _require(raw: Any, loc: Loc, problems: Problems, required: bool) -> bool:
    """Return True when there is a value to read; record a missing required one."""
    if not is_absent(raw):
        return True
    if required:
        problems.add(loc, "bắt buộc, không được để trống", REQUIRED)
    return False


def text(
    raw: Any, loc: Loc, problems: Problems, *, required: bool = False, max_length: int = 300
) -> str | None:
    """Read free text; numbers are accepted as their decimal writing."""
    if not _require(raw, loc, problems, required):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        problems.add(loc, "phải là chuỗi ký tự", FORMAT)
        return None
    value = raw.strip() if isinstance(raw, str) else str(raw)
    if len(value) > max_length:
        problems.add(loc, f"dài quá {max_length} ký tự", TOO_LONG)
        return None
    return value


def integer(
    raw: Any,
    loc: Loc,
    problems: Problems,
    *,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """Read a whole number written as a number or a string ("10", "10.0", 10, 10.0)."""
    if not _require(raw, loc, problems, required):
        return None
    value: int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _INTEGER.match(raw.strip()):
        value = int(re.split(r"[.,]", raw.strip())[0])
    if value is None:
        problems.add(loc, f"phải là số nguyên, nhận được {raw!r}", FORMAT)
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        problems.add(loc, f"phải trong khoảng {_range(minimum, maximum)}, nhận được {value}", INVALID)
        return None
    return value


def decimal(
    raw: Any, loc: Loc, problems: Problems, *, minimum: float, maximum: float, zero_is_absent: bool = False
) -> float | None:
    """Read a decimal number; a decimal comma (12,5) is accepted as HIS software writes it."""
    if not _require(raw, loc, problems, False):
        return None
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        value = float(raw)
    elif isinstance(raw, str) and _DECIMAL.match(raw.strip()):
        value = float(raw.strip().replace(",", "."))
    if value is None:
        problems.add(loc, f"phải là một số, nhận được {raw!r}", FORMAT)
        return None
    # HIS software writes 0 for an unknown weight; 0 kg is never a real value.
    if zero_is_absent and value == 0:
        return None
    if not minimum < value <= maximum:
        problems.add(loc, f"phải lớn hơn {minimum:g} và không quá {maximum:g}, nhận được {value:g}", INVALID)
        return None
    return value


def dmy_date(raw: Any, loc: Loc, problems: Problems, *, required: bool = False) -> date | None:
    """Read a day/month/year date (5/3/2019 or 05/03/2019)."""
    if not _require(raw, loc, problems, required):
        return None
    match = _DMY.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        problems.add(
            loc, f"phải theo dạng ngày/tháng/năm (d/m/Y), ví dụ 05/03/2019; nhận được {raw!r}", FORMAT
        )
        return None
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        problems.add(loc, f"ngày {raw.strip()} không tồn tại", INVALID)
        return None


def local_time(raw: Any, loc: Loc, problems: Problems, *, required: bool = False) -> datetime | None:
    """Read `yyyy-MM-dd HH:mm:ss` as Vietnam time (UTC+7)."""
    if not _require(raw, loc, problems, required):
        return None
    match = _LOCAL_TIME.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        problems.add(
            loc,
            f"phải theo dạng yyyy-MM-dd HH:mm:ss (giờ Việt Nam), ví dụ 2026-11-22 09:30:00; nhận được {raw!r}",
            FORMAT,
        )
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM_TIME)
    except ValueError:
        problems.add(loc, f"thời điểm {raw.strip()} không tồn tại", INVALID)
        return None


def phone(raw: Any, loc: Loc, problems: Problems) -> str | None:
    """Read a phone number, dropping the spaces, dots and dashes people type in it."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        # As a JSON number, 0912345678 arrives as 912345678: the leading zero is already lost.
        problems.add(loc, "số điện thoại phải gửi dạng chuỗi ký tự (để giữ số 0 ở đầu)", FORMAT)
        return None
    value = text(raw, loc, problems, max_length=40)
    if value is None:
        return None
    digits = _PHONE_SEPARATORS.sub("", value)
    # HIS software sends 0000000000 when it has no number: that is no number.
    if set(digits.lstrip("+")) <= {"0"}:
        return None
    if not _PHONE.match(digits):
        problems.add(loc, f"số điện thoại phải gồm 8 đến 15 chữ số, nhận được {value!r}", FORMAT)
        return None
    return digits


def _range(minimum: int | None, maximum: int | None) -> str:
    if maximum is None:
        return f"từ {minimum} trở lên"
    if minimum is None:
        return f"không quá {maximum}"
    return f"{minimum}–{maximum}"
