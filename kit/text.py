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
