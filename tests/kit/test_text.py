"""Vietnamese text helpers: dictionary order, whole numbers as written, quantities in words."""

from __future__ import annotations

import pytest

from kit.text import number_in_words, parse_whole_number, vietnamese_name_key, vietnamese_sort_key


class TestVietnameseOrder:
    def test_letters_follow_the_vietnamese_alphabet(self) -> None:
        provinces = [
            "Đà Nẵng",
            "Hà Nội",
            "Cần Thơ",
            "Cà Mau",
            "Cao Bằng",
            "An Giang",
            "Bắc Ninh",
            "Điện Biên",
        ]
        assert sorted(provinces, key=vietnamese_sort_key) == [
            "An Giang",
            "Bắc Ninh",
            "Cà Mau",
            "Cao Bằng",
            "Cần Thơ",
            "Đà Nẵng",
            "Điện Biên",
            "Hà Nội",
        ]

    def test_d_before_dd_and_modified_vowels_after_their_base(self) -> None:
        words = ["ơi", "ôm", "om", "ưa", "ua", "đa", "da", "âm", "ăn", "an", "êm", "em"]
        assert sorted(words, key=vietnamese_sort_key) == [
            "an",
            "ăn",
            "âm",
            "da",
            "đa",
            "em",
            "êm",
            "om",
            "ôm",
            "ơi",
            "ua",
            "ưa",
        ]

    def test_tones_decide_only_between_the_same_letters(self) -> None:
        tones = ["mạ", "má", "mã", "mả", "mà", "ma"]
        assert sorted(tones, key=vietnamese_sort_key) == ["ma", "mà", "mả", "mã", "má", "mạ"]
        # Letters first: "màn" comes after "mạ" because n follows the end of the word.
        assert sorted(["màn", "mạ", "ma"], key=vietnamese_sort_key) == ["ma", "mạ", "màn"]

    def test_case_and_composition_do_not_matter(self) -> None:
        decomposed = "Ha\u0300 No\u0302\u0323i"
        assert vietnamese_sort_key(decomposed)[:2] == vietnamese_sort_key("hà nội")[:2]

    def test_people_by_given_name_then_family(self) -> None:
        people = ["BS. Nguyễn Thu Hà", "Trần Văn An", "Lê Thị Hà", "Phạm Minh Đức"]
        assert sorted(people, key=vietnamese_name_key) == [
            "Trần Văn An",
            "Phạm Minh Đức",
            "Lê Thị Hà",
            "BS. Nguyễn Thu Hà",
        ]


class TestWholeNumbers:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("1500", 1500),
            ("1.500", 1500),
            ("1 500", 1500),
            ("1.500 ₫", 1500),
            ("1.500đ", 1500),
            ("12.345.678", 12_345_678),
            ("1,500", 1500),
            (" 700 ", 700),
        ],
    )
    def test_reads_what_vietnamese_write(self, text: str, value: int) -> None:
        assert parse_whole_number(text) == value

    @pytest.mark.parametrize("text", ["1.5", "1,50", "12.345,678", "-5", "abc", "", "1.5000", "١٢"])
    def test_refuses_what_is_not_a_whole_number(self, text: str) -> None:
        assert parse_whole_number(text) is None


class TestNumberInWords:
    @pytest.mark.parametrize(
        ("n", "words"),
        [
            (0, "không"),
            (1, "một"),
            (5, "năm"),
            (10, "mười"),
            (11, "mười một"),
            (15, "mười lăm"),
            (20, "hai mươi"),
            (21, "hai mươi mốt"),
            (24, "hai mươi bốn"),
            (25, "hai mươi lăm"),
            (100, "một trăm"),
            (101, "một trăm lẻ một"),
            (105, "một trăm lẻ năm"),
            (110, "một trăm mười"),
            (115, "một trăm mười lăm"),
            (121, "một trăm hai mươi mốt"),
            (1000, "một nghìn"),
            (1005, "một nghìn không trăm lẻ năm"),
            (1100, "một nghìn một trăm"),
            (21000, "hai mươi mốt nghìn"),
            (1_000_000, "một triệu"),
            (1_000_001, "một triệu không trăm lẻ một"),
            (1_500_000_000, "một tỷ năm trăm triệu"),
        ],
    )
    def test_vietnamese(self, n: int, words: str) -> None:
        assert number_in_words(n) == words

    @pytest.mark.parametrize(
        ("n", "words"),
        [(21, "twenty-one"), (105, "one hundred and five"), (1500, "one thousand five hundred"), (0, "zero")],
    )
    def test_english(self, n: int, words: str) -> None:
        assert number_in_words(n, "en") == words

    def test_refuses_negative_numbers(self) -> None:
        with pytest.raises(ValueError, match="zero or more"):
            number_in_words(-1)
