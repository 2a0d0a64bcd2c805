"""The search vocabulary: words, deletion keys, typo matching and ranking (pure functions)."""

from __future__ import annotations

import pytest

from eprescribe.catalogue import vocabulary
from eprescribe.catalogue.vocabulary import Posting, ProductText, Quality


def one_letter_wrong(word: str) -> list[str]:
    """Every kind of single slip: a letter missing, one added, one changed, two swapped."""
    middle = len(word) // 2
    changed = "x" if word[middle] != "x" else "y"
    return [
        word[:middle] + word[middle + 1 :],
        word[:middle] + "e" + word[middle:],
        word[:middle] + changed + word[middle + 1 :],
        word[: middle - 1] + word[middle] + word[middle - 1] + word[middle + 1 :],
    ]


def finds(term: str, word: str) -> bool:
    """The typed term reaches the word through the keys alone (what the database looks up)."""
    return bool(vocabulary.lookup_keys(term) & vocabulary.keys_of(word))


class TestWords:
    def test_folded_without_diacritics_case_or_punctuation(self) -> None:
        assert vocabulary.words("Thuốc ho P/H Đông dược") == ["thuoc", "ho", "p", "h", "dong", "duoc"]

    def test_query_terms_are_distinct_and_bounded(self) -> None:
        assert vocabulary.query_terms("ho ho  HO siro") == ["ho", "siro"]
        assert len(vocabulary.query_terms(" ".join(f"w{i}" for i in range(20)))) == vocabulary.MAX_TERMS


class TestOneWrongLetter:
    @pytest.mark.parametrize("word", ["astex", "thuoc", "siro", "prospan", "paracetamol"])
    def test_every_kind_of_slip_is_found_and_matched(self, word: str) -> None:
        for typed in one_letter_wrong(word):
            assert finds(typed, word), (typed, word)
            assert vocabulary.match(typed, word) == Quality.ONE_TYPO, (typed, word)

    def test_two_letter_words_too(self) -> None:
        for typed in ("hp", "oh", "hoo", "o"):
            assert finds(typed, "ho"), typed
        assert [vocabulary.match(t, "ho") for t in ("hp", "oh", "hoo")] == [Quality.ONE_TYPO] * 3
        # A single letter forgives nothing: it would match every short word.
        assert vocabulary.match("o", "ho") is None

    def test_long_words_forgive_two(self) -> None:
        assert finds("paracetmlo", "paracetamol")
        assert vocabulary.match("paracetmlo", "paracetamol") == Quality.TWO_TYPOS
        assert vocabulary.match("amxcilin", "amoxicilin") == Quality.TWO_TYPOS

    def test_short_words_forgive_only_one(self) -> None:
        assert vocabulary.match("atsxe", "astex") is None
        assert vocabulary.match("a", "b") is None

    def test_numbers_match_only_as_typed_or_begun(self) -> None:
        assert vocabulary.match("12346", "12345") is None
        assert vocabulary.match("1234", "12345") == Quality.PREFIX
        assert not finds("12346", "12345")

    def test_a_term_typed_in_part_matches_the_word_it_begins(self) -> None:
        assert finds("parac", "paracetamol")
        assert vocabulary.match("parac", "paracetamol") == Quality.PREFIX
        # Two letters are a whole word only: "ho" is not the beginning of "hoat".
        assert vocabulary.match("ho", "hoat") is None


def postings(*products: tuple[int, str, str, str]) -> list[tuple[Posting, str]]:
    found = []
    for drug_id, name, ingredient, form in products:
        text = ProductText(drug_id, name, ingredient, "10mg", form, f"VD-{drug_id}-20", "Công ty Dược")
        found += [(p, name) for p in vocabulary.postings(text)]
    return found


class TestRanking:
    def test_names_holding_the_words_come_before_other_fields(self) -> None:
        found = postings(
            (1, "Thang Tiêu dao", "sài hồ + đương quy", "thuốc thang"),
            (2, "Thuốc ho Bảo Thanh", "xuyên bối mẫu", "siro"),
            (3, "Thuốc ho P/H", "bạch linh", "siro"),
        )
        ranked = vocabulary.rank(["thuoc", "ho"], found, 10)
        assert ranked.drug_ids == [2, 3, 1] and not ranked.fuzzy

    def test_the_exact_name_then_names_beginning_with_it(self) -> None:
        found = postings(
            (1, "Viên Panadol Extra", "paracetamol", "viên nén"),
            (2, "Panadol Extra Advance", "paracetamol", "viên nén"),
            (3, "Panadol Extra", "paracetamol", "viên nén"),
            (4, "Panadol", "paracetamol + extra caffeine", "viên nén"),
        )
        assert vocabulary.rank(["panadol", "extra"], found, 10).drug_ids == [3, 2, 1, 4]

    def test_a_typo_match_counts_only_when_nothing_matches_as_typed(self) -> None:
        found = postings((1, "Panadol Extra", "paracetamol", "viên nén"), (2, "Panadil", "x", "viên"))
        typed = vocabulary.rank(["panadol"], found, 10)
        assert typed.drug_ids == [1] and not typed.fuzzy
        slipped = vocabulary.rank(["panadl", "extra"], found, 10)
        assert slipped.drug_ids == [1] and slipped.fuzzy

    def test_fewer_typos_rank_first(self) -> None:
        found = postings((1, "Mefrotmin", "x", "viên"), (2, "Metformin Stella", "metformin", "viên"))
        assert vocabulary.rank(["metfromin"], found, 10).drug_ids == [2, 1]

    def test_no_typo_is_forgiven_in_a_registration_number(self) -> None:
        found = postings((1, "Brand", "x", "viên"))
        assert vocabulary.rank(["vd", "2"], found, 10).drug_ids == []
        assert vocabulary.rank(["vd", "1"], found, 10).drug_ids == [1]

    def test_ties_in_vietnamese_dictionary_order(self) -> None:
        found = postings(
            (1, "Siro Em", "x", "siro"), (2, "Siro Đặc", "x", "siro"), (3, "Siro Dịu", "x", "siro")
        )
        assert vocabulary.rank(["siro"], found, 10).drug_ids == [3, 2, 1]
