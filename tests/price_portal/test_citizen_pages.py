"""The portal as a citizen reads it: a box to open one's prescription, every matching product one
click away, provinces in Vietnamese order, filters folded on the first screen."""

from __future__ import annotations

import re
import string

import httpx

from eprescribe.registry import service as registry
from kit.text import vietnamese_sort_key
from tests.factories import Portal, rand

OPTION = re.compile(r'<option value="(\d{2})"')


class TestHome:
    async def test_the_home_page_opens_a_prescription_by_its_code(self, client: httpx.AsyncClient) -> None:
        home = await client.get("/")
        assert 'action="/rx"' in home.text and 'name="code"' in home.text
        opened = await client.get("/rx", params={"code": " 01001k7q2m9x-C "})
        assert opened.status_code == 303 and opened.headers["location"] == "/rx/01001K7Q2M9X-c"
        # A pasted link or the whole QR text of the paper lead there too.
        pasted = await client.get("/rx", params={"code": "https://erx.gov.vn/rx/01001K7Q2M9X-c"})
        assert pasted.headers["location"] == "/rx/01001K7Q2M9X-c"
        scanned = await client.get("/rx", params={"code": "01001K7Q2M9X-c.eyJhbGciOi.xx.yy"})
        assert scanned.headers["location"] == "/rx/01001K7Q2M9X-c"
        wrong = await client.get("/rx", params={"code": "01001"})
        assert wrong.status_code == 422 and "14 ký tự" in wrong.text

    async def test_the_filters_are_folded_until_one_is_used(self, client: httpx.AsyncClient) -> None:
        home = await client.get("/")
        assert '<details class="filters-box">' in home.text
        filtered = await client.get("/search", params={"q": "x", "province": "01"})
        assert '<details class="filters-box" open>' in filtered.text

    async def test_provinces_are_in_vietnamese_dictionary_order(self, client: httpx.AsyncClient) -> None:
        home = await client.get("/")
        codes = OPTION.findall(home.text)
        provinces = registry.provinces()
        names = [provinces[c].name("vi") for c in codes]
        assert (
            names.index("Bắc Ninh") < names.index("Cà Mau") < names.index("Cần Thơ") < names.index("Đà Nẵng")
        )
        assert names.index("Hà Nội") < names.index("Thành phố Hồ Chí Minh") < names.index("Huế")
        stripped = [n.removeprefix("Thành phố ") for n in names]
        assert stripped == sorted(stripped, key=vietnamese_sort_key)


class TestMoreProducts:
    async def test_and_n_more_products_opens_every_match(
        self, portal_api: Portal, client: httpx.AsyncClient
    ) -> None:
        word = rand(6, string.ascii_lowercase)
        made = [await portal_api.product(ingredient=f"{word} {i}", name=f"Siro {word} {i}") for i in range(9)]
        search = await client.get("/search", params={"q": word})
        link = re.search(r'<a href="([^"]+)" data-more-products>([^<]+)</a>', search.text)
        assert link and link.group(1) == f"/products?q={word}" and "3" in link.group(2)
        listed = await client.get(link.group(1))
        assert listed.status_code == 200 and 'data-products="9"' in listed.text
        for product in made:
            assert product.registration_no in listed.text

    async def test_the_product_list_pages_and_reads_leniently(self, client: httpx.AsyncClient) -> None:
        empty = await client.get("/products", params={"q": "zzzzqqqxx", "page": "x"})
        assert empty.status_code == 200 and "Không có sản phẩm nào phù hợp" in empty.text
        nothing = await client.get("/products")
        assert nothing.status_code == 200
