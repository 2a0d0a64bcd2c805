"""erx.web: language choice, message catalogues and formatting shared by every page."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from starlette.requests import Request

import pharmacy_gateway.console.api  # noqa: F401 - registers the counter's messages
import price_portal.pages  # noqa: F401 - registers the portal's messages
from kit import web
from kit.time import end_of_vn_day, parse_day


def request(query: str = "", cookie: str | None = None, accept: str | None = None) -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"lang={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/search",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


class TestLanguageChoice:
    @pytest.mark.parametrize(
        ("query", "cookie", "accept", "lang", "remember", "chosen"),
        [
            ("", None, None, "vi", False, False),
            ("", None, "en-US,en;q=0.9", "vi", False, False),
            ("", None, "vi-VN,vi;q=0.9,en;q=0.8", "vi", False, False),
            ("", None, "de, fr", "vi", False, False),
            ("", "en", "vi", "en", False, True),
            ("lang=en", None, None, "en", True, True),
            ("lang=en", "en", None, "en", False, True),
            ("lang=vi", "en", "en", "vi", True, True),
            ("lang=fr", None, None, "vi", False, False),
        ],
    )
    def test_query_then_cookie_then_vietnamese(
        self, query: str, cookie: str | None, accept: str | None, lang: str, remember: bool, chosen: bool
    ) -> None:
        assert web.choose_language(request(query, cookie, accept)) == web.LanguageChoice(
            lang, remember, chosen
        )

    def test_url_with_changes_one_parameter(self) -> None:
        r = request("q=thu%E1%BB%91c+ho&page=3")
        assert web.url_with(r, lang="en") == "/search?q=thu%E1%BB%91c+ho&page=3&lang=en"
        assert web.url_with(r, page=None) == "/search?q=thu%E1%BB%91c+ho"


class TestMessages:
    def test_every_message_exists_in_both_languages(self) -> None:
        assert web.MESSAGES.untranslated() == {}

    def test_a_package_adds_its_own_and_falls_back_to_vietnamese(self) -> None:
        messages = web.Messages()
        messages.add(
            {
                "vi": {"x.hello": "Xin chào {name}", "x.only": "Chỉ tiếng Việt"},
                "en": {"x.hello": "Hello {name}"},
            }
        )
        assert messages.text("en", "x.hello", name="Lan") == "Hello Lan"
        assert messages.text("en", "x.only") == "Chỉ tiếng Việt"
        assert messages.text("vi", "x.missing") == "x.missing"
        assert messages.untranslated() == {"en": {"x.only"}}

    def test_a_key_cannot_be_redefined_differently(self) -> None:
        messages = web.Messages()
        messages.add({"vi": {"x.a": "A"}})
        messages.add({"vi": {"x.a": "A"}})
        with pytest.raises(ValueError, match="already defined"):
            messages.add({"vi": {"x.a": "B"}})
        with pytest.raises(ValueError, match="unsupported language"):
            messages.add({"fr": {"x.a": "A"}})


class TestFormatting:
    def test_money_and_numbers_per_language(self) -> None:
        assert web.format_money(1234567, "vi") == "1.234.567 ₫"
        assert web.format_money(1234567, "en") == "1,234,567 ₫"
        assert web.format_money(None, "vi") == "—"
        assert web.format_number(12.25, "vi", 1) == "12,2"
        assert web.format_number(1234.5, "en", 1) == "1,234.5"


class TestPeopleFormats:
    """Dates day first and deadlines to the second in both languages; units and refusals translated."""

    def test_days_are_day_first_in_both_languages(self) -> None:
        assert (
            web.format_day(date(2026, 12, 7), "vi") == web.format_day(date(2026, 12, 7), "en") == "07/12/2026"
        )
        # An instant is shown on its Vietnamese day: 17:30 UTC is already the next day in Hà Nội.
        assert web.format_day(datetime(2026, 12, 6, 17, 30, tzinfo=UTC), "en") == "07/12/2026"
        assert web.format_moment(datetime(2026, 12, 1, 16, 46, 53, tzinfo=UTC), "vi") == "01/12/2026 23:46"

    def test_a_deadline_is_a_time_element_read_the_same_everywhere(self) -> None:
        vi = web.format_deadline(end_of_vn_day(date(2026, 12, 7)), "vi")
        assert (
            vi
            == '<time datetime="2026-12-07T23:59:59+07:00" data-deadline>đến hết ngày 07/12/2026 (23:59:59)</time>'
        )
        assert "until the end of 07/12/2026 (23:59:59)" in web.format_deadline(
            end_of_vn_day(date(2026, 12, 7)), "en"
        )

    def test_units_are_in_the_pages_language(self) -> None:
        assert web.format_unit("viên", "vi") == "viên"
        assert web.format_unit("viên", "en") == "tablet" and web.format_unit("Ống", "en") == "ampoule"
        assert web.format_unit("bịch", "en") == "bịch"

    def test_a_field_error_is_read_from_its_code_never_its_sentence(self) -> None:
        error = {
            "loc": ["body", "items", 0, "quantity"],
            "msg": "999 asked for line 1, only 20 remain",
            "code": "quantity_exceeds_remaining",
            "params": {"asked": 999, "line": 1, "remaining": 20},
        }
        assert web.MESSAGES.error_text("vi", error) == "Dòng 1: bán 999 nhưng chỉ còn 20."
        assert web.MESSAGES.error_text("en", error) == "Line 1: 999 asked for, only 20 remain."
        big = {
            "code": "less_than_equal",
            "params": {"le": 100000},
            "msg": "Input should be less than or equal to 100000",
        }
        assert web.MESSAGES.error_text("vi", big) == "Không được lớn hơn 100.000."
        assert (
            web.MESSAGES.error_text("vi", {"msg": "Input should be a valid integer"})
            == "Giá trị không hợp lệ."
        )


class TestDays:
    @pytest.mark.parametrize(
        ("text", "day"),
        [
            ("20/06/1985", (1985, 6, 20)),
            ("2-3-2026", (2026, 3, 2)),
            ("20.06.1985", (1985, 6, 20)),
            ("1985-06-20", (1985, 6, 20)),
        ],
    )
    def test_reads_the_day_first(self, text: str, day: tuple[int, int, int]) -> None:
        assert parse_day(text) == date(*day)

    @pytest.mark.parametrize("text", ["31/02/2026", "06/20/1985", "1985/06/20", "", "hôm nay"])
    def test_refuses_what_is_not_a_day(self, text: str) -> None:
        assert parse_day(text) is None
