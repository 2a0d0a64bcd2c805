"""The HTML pages: language, forms that work without script, nothing loaded from outside."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from tests.factories import Portal, token


class Page(HTMLParser):
    """What a test needs to know about a page: its assets, form controls, labels and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang = ""
        self.assets: list[str] = []
        self.controls: list[str] = []
        self.labels: set[str] = set()
        self.links: list[str] = []
        self.svg_roles: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.assets.append(a["src"])
        if tag == "link" and a.get("rel") in ("stylesheet", "icon", "preload", "manifest"):
            self.assets.append(a["href"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a.get("id", ""))
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "svg" and a.get("role"):
            self.svg_roles.append(a["role"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


async def page(client: httpx.AsyncClient, url: str, **headers: str) -> tuple[httpx.Response, Page]:
    """GET a page as a first-time visitor: the shared client keeps no language cookie."""
    r = await client.get(url, headers=headers)
    client.cookies.clear()
    return r, Page(r.text)


def assert_self_contained(r: httpx.Response, p: Page) -> None:
    for asset in p.assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    # Every control has a label tied to it.
    assert p.controls and all(c and c in p.labels for c in p.controls), (p.controls, p.labels)


class TestLanguage:
    async def test_vietnamese_by_default(self, client: httpx.AsyncClient) -> None:
        r, p = await page(client, "/")
        assert r.status_code == 200
        assert p.lang == "vi" and r.headers["content-language"] == "vi"
        assert "Giá thuốc công khai" in p.words and "Tìm giá" in p.words

    async def test_an_english_browser_still_gets_vietnamese_first(self, client: httpx.AsyncClient) -> None:
        _, p = await page(client, "/", **{"Accept-Language": "en-GB,en;q=0.9"})
        assert p.lang == "vi" and "Giá thuốc công khai" in p.words
        _, p = await page(client, "/?lang=en", **{"Accept-Language": "en-GB,en;q=0.9"})
        assert p.lang == "en" and "Public drug prices" in p.words

    async def test_chosen_language_is_remembered(self, portal_api: Portal) -> None:
        client = httpx.AsyncClient(transport=portal_api.client._transport, base_url="http://erx.test")
        async with client:
            r = await client.get("/search?q=x&lang=en")
            assert Page(r.text).lang == "en"
            assert "lang=en" in r.headers["set-cookie"] and "private" in r.headers["cache-control"]
            r = await client.get("/", headers={"Accept-Language": "vi"})
            assert Page(r.text).lang == "en" and "set-cookie" not in r.headers
            assert Page((await client.get("/?lang=vi")).text).lang == "vi"
            assert Page((await client.get("/")).text).lang == "vi"

    async def test_the_switch_links_keep_the_query(self, client: httpx.AsyncClient) -> None:
        _, p = await page(client, "/search?q=thuoc+ho&province=01")
        switch = [link for link in p.links if "lang=en" in link]
        assert switch and all("q=thuoc+ho" in link and "province=01" in link for link in switch)


class TestPages:
    async def test_home_is_self_contained_and_accessible(self, client: httpx.AsyncClient) -> None:
        r, p = await page(client, "/")
        assert_self_contained(r, p)
        assert 'href="#main"' in r.text and 'id="main"' in r.text
        assert 'action="/search" method="get"' in r.text
        assert "public" in r.headers["cache-control"]

    async def test_search_without_diacritics_lists_products_and_prices(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet(province="48")
        product = await portal_api.product(name=f"Siro ho Bổ phế {word}", price=40000)
        await portal_api.listed(outlet, (product, 45000))
        r, p = await page(portal_api.client, f"/search?q=siro+ho+bo+phe+{word}&province=48")
        assert r.status_code == 200
        assert_self_contained(r, p)
        assert f"/products/{product.registration_no}" in p.links
        assert f"/outlets/{outlet.id}" in p.links
        assert "45.000 ₫" in p.words and "Cao hơn giá kê khai" in p.words
        assert "1 giá niêm yết" in p.words
        assert f"/portal/api/v1/prices.csv?q=siro+ho+bo+phe+{word}&province=48&sort=price" in p.links

    async def test_search_explains_a_typo_match_and_an_empty_result(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        product = await portal_api.product(name=f"Cetirizine {word}")
        await portal_api.listed(outlet, (product, 3000))
        _, p = await page(portal_api.client, f"/search?q=cetirizin+{word}&lang=en")
        assert "Nothing matched" not in p.words
        _, p = await page(portal_api.client, f"/search?q=cetrizine+{word}&lang=en")
        assert "Nothing matched" in p.words and f"/products/{product.registration_no}" in p.links
        _, p = await page(portal_api.client, f"/search?q=kvwxq{token()}&lang=en")
        assert "No prices match." in p.words

    async def test_search_page_tolerates_odd_parameters(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/search?q=x&sort=bogus&province=ZZ&page=-4&kind=shop&category=food")
        assert r.status_code == 200

    async def test_product_page(self, portal_api: Portal) -> None:
        word = token()
        product = await portal_api.product(name=f"Amoxicillin {word}", price=2000)
        cheaper = await portal_api.product(
            name=f"Amoxicillin generic {word}", ingredient=product.active_ingredient, price=900
        )
        dear, fair = await portal_api.outlet(), await portal_api.outlet()
        await portal_api.listed(dear, (product, 2500), (cheaper, 1000))
        await portal_api.listed(fair, (product, 1900))
        r, p = await page(portal_api.client, f"/products/{product.registration_no}")
        assert r.status_code == 200
        assert_self_contained(r, p)
        assert "img" in p.svg_roles  # the server-drawn history chart
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in r.text
        assert re.search(r'data-stat="median">\s*2\.200 ₫', r.text)
        assert re.search(r'data-stat="declared">\s*2\.000 ₫', r.text)
        assert r.text.count('class="above-declared"') == 1
        assert f"/products/{cheaper.registration_no}" in p.links
        assert "Lựa chọn rẻ hơn" in p.words

    async def test_product_page_sorts_by_distance_from_a_plain_form(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        far = await portal_api.outlet(province="79", latitude=10.77, longitude=106.70)
        near = await portal_api.outlet(latitude=21.03, longitude=105.85)
        await portal_api.listed(far, (product, 100))
        await portal_api.listed(near, (product, 900))
        _, by_price = await page(portal_api.client, f"/products/{product.registration_no}")
        _, by_distance = await page(
            portal_api.client, f"/products/{product.registration_no}?lat=21.0&lon=105.8"
        )
        outlets = [f"/outlets/{far.id}", f"/outlets/{near.id}"]
        assert [link for link in by_price.links if link in outlets] == outlets
        assert [link for link in by_distance.links if link in outlets] == list(reversed(outlets))
        assert "km" in by_distance.words

    async def test_unknown_product_and_outlet_pages_are_404(self, client: httpx.AsyncClient) -> None:
        for url in ("/products/VD-00000-00-NOPE", "/outlets/999999999", "/outlets/abc"):
            r, p = await page(client, url)
            assert r.status_code == 404, url
            assert r.headers["content-type"].startswith("text/html")
            assert "Không tìm thấy trang" in p.words

    async def test_outlet_page(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet(name=f"Nhà thuốc Thiện Tâm {token()}")
        product = await portal_api.product(ingredient=f"{token()}amol", price=100)
        await portal_api.listed(outlet, (product, 150))
        r, p = await page(portal_api.client, f"/outlets/{outlet.id}?lang=en")
        assert r.status_code == 200
        assert_self_contained(r, p)
        assert f"/products/{product.registration_no}" in p.links
        assert "Above declared price" in p.words and "1 products priced" in p.words


class TestStaticFiles:
    async def test_versioned_assets_are_cached_for_a_year(self, client: httpx.AsyncClient) -> None:
        html = (await client.get("/")).text
        css = re.search(r'href="(/static/erx/erx\.css\?v=[0-9a-f]+)"', html)
        assert css is not None
        r = await client.get(css.group(1))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
        assert "immutable" in r.headers["cache-control"]
        again = await client.get(css.group(1), headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304

    @pytest.mark.parametrize(
        "url",
        [
            "/static/erx/nope.css",
            "/static/erx/..%2Fweb.py",
            "/static/other/erx.css",
            "/static/portal/erx.css",
        ],
    )
    async def test_nothing_else_is_served(self, client: httpx.AsyncClient, url: str) -> None:
        assert (await client.get(url)).status_code == 404
