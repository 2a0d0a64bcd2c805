"""erx.web: language choice, message catalogues and formatting shared by every page."""

from __future__ import annotations

import pytest
from starlette.requests import Request

import price_portal.pages  # noqa: F401 - registers the portal's messages
from kit import web


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
        ("query", "cookie", "accept", "lang", "remember"),
        [
            ("", None, None, "vi", False),
            ("", None, "en-US,en;q=0.9", "vi", False),
            ("", None, "vi-VN,vi;q=0.9,en;q=0.8", "vi", False),
            ("", None, "de, fr", "vi", False),
            ("", "en", "vi", "en", False),
            ("lang=en", None, None, "en", True),
            ("lang=en", "en", None, "en", False),
            ("lang=vi", "en", "en", "vi", True),
            ("lang=fr", None, None, "vi", False),
        ],
    )
    def test_query_then_cookie_then_vietnamese(
        self, query: str, cookie: str | None, accept: str | None, lang: str, remember: bool
    ) -> None:
        assert web.choose_language(request(query, cookie, accept)) == web.LanguageChoice(lang, remember)

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
