"""The ICD-10 codes a prescriber picks diagnoses from, searchable with or without diacritics."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kit.text import fold

SEARCH_LIMIT = 20
_WORD_SPLIT = re.compile(r"[\s,;:()\[\]/-]+")


@dataclass(frozen=True)
class Icd10:
    code: str
    name_vi: str
    name_en: str
    words: tuple[str, ...]

    def has_words_starting(self, terms: list[str]) -> bool:
        return all(any(word.startswith(term) for word in self.words) for term in terms)


@cache
def icd10_list() -> list[Icd10]:
    """Read the shipped ICD-10 list once, folded for diacritic-blind search."""
    source = resources.files("eprescribe.prescriptions") / "data" / "icd10.csv"
    rows = csv.DictReader(io.StringIO(source.read_text(encoding="utf-8-sig")))
    return [
        Icd10(
            r["icd10"].strip().upper(),
            r["name_vi"],
            r["name_en"],
            tuple(_WORD_SPLIT.split(fold(f"{r['icd10']} {r['name_vi']} {r['name_en']}"))),
        )
        for r in rows
    ]


def search_icd10(q: str, limit: int = SEARCH_LIMIT) -> list[Icd10]:
    """Find codes starting with `q`, then names with a word starting with each folded word of `q`."""
    terms = [t for t in _WORD_SPLIT.split(fold(q)) if t]
    if not terms:
        return []
    head = q.strip().upper()
    by_code = [d for d in icd10_list() if d.code.startswith(head)]
    by_words = [d for d in icd10_list() if d not in by_code and d.has_words_starting(terms)]
    return (by_code + by_words)[:limit]
