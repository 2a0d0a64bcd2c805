"""Text folding used for search and for matching prescribed lines to products."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case, strip Vietnamese diacritics (đ included) and collapse white space."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.lower()).strip()


def match_key(text: str) -> str:
    """Fold and drop spaces, so `500 mg` and `500mg` compare equal."""
    return fold(text).replace(" ", "")


# ---- Vietnamese collation ------------------------------------------------------------------

# The alphabet in dictionary order; f, j, w and z (loanwords) sit where Latin puts them.
_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_LETTER_RANK = {letter: rank for rank, letter in enumerate(_ALPHABET)}
# Letters made with a modifier: breve, circumflex, horn (decomposed by NFD).
_MODIFIED = {
    ("a", "\u0306"): "ă",
    ("a", "\u0302"): "â",
    ("e", "\u0302"): "ê",
    ("o", "\u0302"): "ô",
    ("o", "\u031b"): "ơ",
    ("u", "\u031b"): "ư",
}
# Tones in dictionary order: level, grave (huyền), hook (hỏi), tilde (ngã), acute (sắc), dot (nặng).
_TONE_RANK = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}


def _collation_units(text: str) -> list[tuple[int, int]]:
    """(primary weight, tone) per character: letters by the Vietnamese alphabet, then the rest."""
    units: list[tuple[int, int]] = []
    for char in unicodedata.normalize("NFC", text.casefold()):
        if char == "đ":
            units.append((100 + _LETTER_RANK["đ"], 0))
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        tone = 0
        for mark in marks:
            if (base, mark) in _MODIFIED:
                base = _MODIFIED[(base, mark)]
            elif mark in _TONE_RANK:
                tone = _TONE_RANK[mark]
        if base in _LETTER_RANK:
            units.append((100 + _LETTER_RANK[base], tone))
        elif base.isdigit():
            units.append((10 + int(base) if base.isascii() else 20, 0))
        elif base.isspace():
            units.append((0, 0))
        elif unicodedata.category(base).startswith("P"):
            units.append((1, 0))
        else:
            units.append((1000 + ord(base), tone))
    return units


def vietnamese_sort_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """Sort the way a Vietnamese dictionary does: letters first (a ă â b c d đ e ê …), then tones.

    Tones only decide between words spelled with the same letters (ma, mà, mả, mã, má, mạ).
    """
    units = _collation_units(text.strip())
    return tuple(u[0] for u in units), tuple(u[1] for u in units), text


def vietnamese_name_key(full_name: str) -> tuple[tuple[tuple[int, ...], tuple[int, ...], str], ...]:
    """Sort people as Vietnamese lists do: by given name (the last word), then family, then middle.

    Leading titles (`BS.`, `ThS.`, `DS.`) do not count.
    """
    words = [w for w in full_name.split() if not w.endswith(".")] or full_name.split()
    if not words:
        return ()
    given, family, middle = words[-1], words[0], " ".join(words[1:-1])
    return vietnamese_sort_key(given), vietnamese_sort_key(family), vietnamese_sort_key(middle)


# ---- numbers the Vietnamese way ------------------------------------------------------------

_GROUPED = re.compile(r"^\d{1,3}(?:([.,\u00a0\u202f ])\d{3})(?:\1\d{3})*$")
_CURRENCY = re.compile(r"\s*(?:₫|đ|vnđ|vnd|đồng|dong)\.?\s*$", re.IGNORECASE)


def parse_whole_number(text: str) -> int | None:
    """Read a whole number as Vietnamese write it: `1500`, `1.500`, `1 500`, `1.500 ₫`; else None.

    `.` groups thousands in Vietnamese (`1.500` is one thousand five hundred), and `,` in
    English; a decimal part is not a whole number and is refused, never rounded.
    """
    cleaned = _CURRENCY.sub("", text.strip())
    if cleaned.isascii() and cleaned.isdigit():
        return int(cleaned)
    if _GROUPED.match(cleaned):
        return int(re.sub(r"\D", "", cleaned))
    return None


_VI_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_VI_GROUPS = ("", "nghìn", "triệu")


def _vi_below_thousand(n: int, *, inner: bool) -> list[str]:
    """Words of 0 < n < 1000; `inner` when a higher group precedes it (say its hundreds and `lẻ`)."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or inner:
        words += [_VI_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            words += ["lẻ", _VI_DIGITS[units]] if words else [_VI_DIGITS[units]]
        return words
    words += ["mười"] if tens == 1 else [_VI_DIGITS[tens], "mươi"]
    if units == 1 and tens > 1:
        words.append("mốt")
    elif units == 5:
        words.append("lăm")
    elif units:
        words.append(_VI_DIGITS[units])
    return words


def _vi_below_billion(n: int, *, inner: bool) -> list[str]:
    words: list[str] = []
    for power in (2, 1, 0):
        group = n // 1000**power % 1000
        if group:
            words += _vi_below_thousand(group, inner=inner or bool(words))
            if _VI_GROUPS[power]:
                words.append(_VI_GROUPS[power])
    return words


def _vi_words(n: int) -> list[str]:
    billions, rest = divmod(n, 1_000_000_000)
    words = [*_vi_words(billions), "tỷ"] if billions else []
    return words + _vi_below_billion(rest, inner=bool(words)) if rest else words


_EN_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_EN_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_GROUPS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def _en_words(n: int) -> str:
    for size, name in _EN_GROUPS:
        if n >= size:
            high, rest = divmod(n, size)
            tail = "" if not rest else (" and " if rest < 100 else " ") + _en_words(rest)
            return f"{_en_words(high)} {name}{tail}"
    if n >= 100:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_SMALL[hundreds]} hundred" + (f" and {_en_words(rest)}" if rest else "")
    if n < 20:
        return _EN_SMALL[n]
    tens, units = divmod(n, 10)
    return _EN_TENS[tens] + (f"-{_EN_SMALL[units]}" if units else "")


def number_in_words(n: int, lang: str = "vi") -> str:
    """A whole number in words, as controlled prescriptions write quantities: 21 → `hai mươi mốt`."""
    if n < 0:
        raise ValueError("only whole numbers of zero or more")
    if lang == "en":
        return _en_words(n)
    return " ".join(_vi_words(n)) if n else _VI_DIGITS[0]
