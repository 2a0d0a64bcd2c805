"""The catalogue's search words: how product text becomes words, how a typed word finds them, how matches rank.

Pure functions, the same on every database: the vocabulary tables (`models.DrugWord`,
`models.DrugWordKey`) are only an index of what these functions compute, and every decision
(which word a term matches, how well, which product ranks first) is taken here, in Python.

Typo tolerance is a deletion neighbourhood (SymSpell): every catalogue word is stored under
the words obtained by deleting up to one letter from it (two for long words), so a typed word
finds its candidates through the same deletions of itself, by equality alone. Candidates are
then confirmed with the edit distance (substitution, insertion, deletion and transposition of
adjacent letters each count one).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from itertools import combinations

from kit.text import fold, vietnamese_sort_key

# Words are runs of letters and digits of the folded text (no case, no diacritics).
_WORD = re.compile(r"[^\W_]+")
# A term this long also matches the words it begins (typed in part); shorter ones, whole words.
PREFIX_MIN = 3
# Terms and words this long forgive two wrong letters; shorter ones one; a single letter none.
LONG_WORD = 8
# Bounds of what one query may ask (the rest of a long query is ignored).
MAX_TERMS = 8
MAX_WORD = 64


class Field(StrEnum):
    """Where in a product a word stands (what it tells of the product's relevance)."""

    NAME = "name"
    INGREDIENT = "ingredient"
    REGISTRATION = "registration"
    STRENGTH = "strength"
    FORM = "form"
    MANUFACTURER = "manufacturer"


# Where a typo is forgiven: everywhere but the registration number (an identifier: a wrong
# letter in it names another product).
TYPO_FIELDS = frozenset(f.value for f in Field if f is not Field.REGISTRATION)

# How much a match in each field counts: the name most, what the product is next.
FIELD_WEIGHT: dict[str, int] = {
    Field.NAME: 4,
    Field.INGREDIENT: 2,
    Field.REGISTRATION: 2,
    Field.STRENGTH: 1,
    Field.FORM: 1,
    Field.MANUFACTURER: 1,
}


def words(text: str) -> list[str]:
    """The folded words of a text, in order (`Thuốc ho P/H` -> `thuoc`, `ho`, `p`, `h`)."""
    return [w[:MAX_WORD] for w in _WORD.findall(fold(text))]


def query_terms(q: str | None) -> list[str]:
    """The distinct words of a query, in order, at most MAX_TERMS."""
    seen: dict[str, None] = {}
    for word in words(q or ""):
        seen.setdefault(word)
    return list(seen)[:MAX_TERMS]


def max_typos(word: str) -> int:
    """Wrong letters forgiven in a word of this length; none in a number (a wrong digit names another)."""
    if len(word) < 2 or word.isdigit():
        return 0
    return 2 if len(word) >= LONG_WORD else 1


def deletions(word: str, depth: int) -> set[str]:
    """Every non-empty word made by deleting 1 to `depth` letters of `word`."""
    found: set[str] = set()
    for n in range(1, min(depth, len(word) - 1) + 1):
        for positions in combinations(range(len(word)), n):
            found.add("".join(ch for i, ch in enumerate(word) if i not in positions))
    return found


def keys_of(word: str) -> set[str]:
    """The keys a catalogue word is stored under: itself, its beginnings and its deletions."""
    prefixes = {word[:n] for n in range(PREFIX_MIN, len(word))}
    return {word} | prefixes | deletions(word, max_typos(word))


def lookup_keys(term: str) -> set[str]:
    """The keys under which a typed term finds every word it may match."""
    return {term} | deletions(term, max_typos(term))


def distance(a: str, b: str, limit: int) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment); `limit + 1` beyond it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[len(b)], limit + 1)


class Quality(IntEnum):
    """How a catalogue word matches a term, best first."""

    EXACT = 0
    PREFIX = 1
    ONE_TYPO = 2
    TWO_TYPOS = 3

    @property
    def typos(self) -> int:
        return max(0, self - Quality.PREFIX)


# Points of a match of each quality, multiplied by the field's weight.
QUALITY_POINTS = {Quality.EXACT: 4, Quality.PREFIX: 3, Quality.ONE_TYPO: 2, Quality.TWO_TYPOS: 1}


# 8,192 pairs are about 2 MiB per process; 65,536 were 18 MiB, which a day of varied typed
# queries fills (the 10-minute soak's RSS rose while it did), for few more hits.
@functools.lru_cache(maxsize=8192)
def match(term: str, word: str) -> Quality | None:
    """How `word` matches the typed `term`, or None (remembered: queries and words repeat)."""
    if word == term:
        return Quality.EXACT
    if len(term) >= PREFIX_MIN and word.startswith(term):
        return Quality.PREFIX
    limit = max_typos(term)
    if limit == 0:
        return None
    found = distance(term, word, limit)
    if found > limit:
        return None
    return Quality.ONE_TYPO if found == 1 else Quality.TWO_TYPOS


# ---- what the index holds ------------------------------------------------------------------


@dataclass(frozen=True)
class ProductText:
    """The searchable fields of one product."""

    id: int
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    registration_no: str
    manufacturer: str | None

    def fields(self) -> Iterator[tuple[Field, str]]:
        yield Field.NAME, self.name
        yield Field.INGREDIENT, self.active_ingredient
        yield Field.REGISTRATION, self.registration_no
        yield Field.STRENGTH, self.strength
        yield Field.FORM, self.dosage_form
        if self.manufacturer:
            yield Field.MANUFACTURER, self.manufacturer


@dataclass(frozen=True, slots=True)
class Posting:
    """One word of one field of one product: the field's `position`-th of its `length` words."""

    word: str
    drug_id: int
    field: str
    position: int
    length: int


def postings(product: ProductText) -> list[Posting]:
    """Every (word, field, position) of a product, a word repeated in a field kept once (first place)."""
    found: list[Posting] = []
    for name, text in product.fields():
        found_here = words(text)
        seen: set[str] = set()
        for position, word in enumerate(found_here):
            if word not in seen:
                seen.add(word)
                found.append(Posting(word, product.id, name, position, len(found_here)))
    return found


def key_rows(vocabulary: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(key, word) of every key of every word."""
    for word in vocabulary:
        for key in keys_of(word):
            yield key, word


# ---- ranking ------------------------------------------------------------------------------


# Qualities as plain ints inside the ranking (an IntEnum's arithmetic costs in a hot loop).
_EXACT, _PREFIX = int(Quality.EXACT), int(Quality.PREFIX)
_POINTS = {int(q): p for q, p in QUALITY_POINTS.items()}


@dataclass(frozen=True, slots=True)
class _Hit:
    term: int
    field: str
    position: int
    length: int
    quality: int


@dataclass(slots=True)
class _Candidate:
    drug_id: int
    name: str
    hits: list[_Hit] = field(default_factory=list)

    def matches_every_term(self, n: int, *, typos: bool) -> bool:
        return len({h.term for h in self.hits if typos or h.quality <= _PREFIX}) == n


@dataclass(frozen=True)
class Ranked:
    drug_ids: list[int]
    # True when no product matched every term without a typo: the ids are close matches.
    fuzzy: bool


SortKey = tuple[int, int, int, int, int, tuple[tuple[int, ...], tuple[int, ...], str], int]


def _sort_key(candidate: _Candidate, n: int, typos: bool) -> SortKey:
    hits = [h for h in candidate.hits if typos or h.quality <= _PREFIX]
    name_hits = [h for h in hits if h.field == Field.NAME]
    in_name = {h.term for h in name_hits}
    name_length = name_hits[0].length if name_hits else MAX_WORD
    in_place = {h.term for h in name_hits if h.term == h.position}
    in_order = len(in_place) == n
    exact_name = (
        in_order
        and name_length == n
        and len({h.term for h in name_hits if h.term == h.position and h.quality == _EXACT}) == n
    )
    best: dict[int, int] = {}
    points: dict[int, int] = {}
    for h in hits:
        best[h.term] = min(best.get(h.term, _PREFIX + 2), h.quality)
        points[h.term] = max(points.get(h.term, 0), FIELD_WEIGHT[h.field] * _POINTS[h.quality])
    edits = sum(max(0, q - _PREFIX) for q in best.values())
    level = 2 if exact_name else 1 if in_order else 0
    return (
        -len(in_name),
        -level,
        edits,
        -sum(points.values()),
        name_length,
        vietnamese_sort_key(candidate.name),
        candidate.drug_id,
    )


def rank(terms: Sequence[str], found: Iterable[tuple[Posting, str]], limit: int) -> Ranked:
    """Products whose words match every term, best first, at most `limit`.

    `found` holds the postings of candidate words with their product's name (a superset is
    fine: every word is checked against the terms here). Products matching every term without
    a typo are the answer when there are any (and their typo matches then count for nothing);
    otherwise those matching with typos (`fuzzy`). Order: more terms found in the name; a name
    that is the query, then one that begins with it; fewer typos; better matches in weightier
    fields; shorter names; then by name in Vietnamese dictionary order.
    """
    n = len(terms)
    found = list(found)
    # Each distinct word is compared with each term once, however many products hold it.
    matches: dict[str, list[tuple[int, int]]] = {}
    for posting, _ in found:
        if posting.word not in matches:
            matches[posting.word] = [
                (index, int(quality))
                for index, term in enumerate(terms)
                if (quality := match(term, posting.word)) is not None
            ]
    candidates: dict[int, _Candidate] = {}
    for posting, name in found:
        for index, grade in matches[posting.word]:
            if grade > _PREFIX and posting.field not in TYPO_FIELDS:
                continue
            candidate = candidates.get(posting.drug_id)
            if candidate is None:
                candidate = candidates[posting.drug_id] = _Candidate(posting.drug_id, name)
            candidate.hits.append(_Hit(index, posting.field, posting.position, posting.length, grade))
    exact = [c for c in candidates.values() if c.matches_every_term(n, typos=False)]
    fuzzy = not exact
    chosen = exact or [c for c in candidates.values() if c.matches_every_term(n, typos=True)]
    chosen.sort(key=lambda c: _sort_key(c, n, fuzzy))
    return Ranked([c.drug_id for c in chosen[:limit]], fuzzy)
