"""The patient's own view: the paper's access key and the date of birth, what was dispensed where,
who looked, the basket; guessing limits that lock no patient out."""

from __future__ import annotations

import re
from typing import Any

import price_portal.patient_view.api  # noqa: F401 - registers the view's messages
from kit import web
from kit.audit import AccessAction
from tests.clients import Browsers
from tests.conftest import Harness
from tests.factories import Api, Pharmacy, World, payload_for

DOB = "1980-03-15"  # the date of birth factories.payload_for writes


async def publish(api: Api, pharmacy: Pharmacy, *items: tuple[str, int, str]) -> None:
    r = await api.client.put(
        "/gateway/v1/prices",
        json={"items": [{"registration_no": n, "price": p, "unit": u} for n, p, u in items]},
        headers=pharmacy.headers,
    )
    assert r.status_code == 200, r.text


async def dispense(api: Api, pharmacy: Pharmacy, code: str, items: list[dict[str, Any]]) -> None:
    r = await api.client.post(
        f"/gateway/v1/prescriptions/{code}/dispenses",
        json={"pharmacist": {"full_name": "DS. Minh", "license_no": "0099/HNO"}, "items": items},
        headers=pharmacy.headers,
    )
    assert r.status_code == 201, r.text


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert found, section_id
    return found.group(0)


class TestOpening:
    async def test_asks_for_the_date_of_birth_before_showing_anything(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        page = await browsers().get(f"/rx/{code.lower()}")
        assert page.status_code == 200
        assert 'name="date_of_birth"' in page.text
        assert "Trần Thị Bình" not in page.text
        assert f"data-code>{code}<" in page.text

    async def test_a_wrong_date_shows_nothing_and_is_logged(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        wrong = await browser.open_rx(code, "1980-03-16")
        assert wrong.status_code == 401
        assert "Trần Thị Bình" not in wrong.text and 'role="alert"' in wrong.text
        assert browser.session_cookie is None
        log = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers)
        assert ("patient", "patient_sign_in_denied") in [(e["actor_kind"], e["action"]) for e in log.json()]

    async def test_an_unknown_code_gets_the_same_answer(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        wrong_date = await browser.open_rx(code, "1990-01-01")
        unknown = await browser.open_rx("01001ZZZZZZZ-c", DOB)
        assert wrong_date.status_code == unknown.status_code == 401
        message = re.compile(r'<p class="note error" role="alert" id="ask-error">(.*?)</p>')
        assert message.search(wrong_date.text).group(1) == message.search(unknown.text).group(1)  # type: ignore[union-attr]

    async def test_the_right_date_opens_the_view_without_identity_numbers(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        opened = await browser.open_rx(code, "15/03/1980")
        assert opened.status_code == 303
        assert opened.headers["location"] == f"/rx/{code}"
        view = await browser.get(f"/rx/{code}")
        # Minimised: initials, no date of birth, no diagnoses, no identity numbers.
        assert "data-initials>T. T. B.<" in view.text
        assert "Trần Thị Bình" not in view.text
        assert "15/03/1980" not in view.text and "1980-03-15" not in view.text
        assert "J06.9" not in view.text
        assert "data-remaining>10<" in view.text
        assert "001180012345" not in view.text and "DN4010112345678" not in view.text

    async def test_the_session_opens_only_its_own_code(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        first = (await api.prescribe(w))["code"]
        second = (
            await api.prescribe(
                w,
                patient={
                    "full_name": "Phạm Văn Đức",
                    "date_of_birth": "1975-01-02",
                    "gender": "male",
                },
            )
        )["code"]
        browser = browsers()
        assert (await browser.open_rx(first, DOB)).status_code == 303
        other = await browser.get(f"/rx/{second}")
        assert 'name="date_of_birth"' in other.text and "Phạm Văn Đức" not in other.text

    async def test_signing_out_closes_the_view(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        await browser.open_rx(code, DOB)
        await browser.get(f"/rx/{code}")
        out = await browser.post_form(f"/rx/{code}/sign-out", {})
        assert out.status_code == 303
        assert 'name="date_of_birth"' in (await browser.get(f"/rx/{code}")).text

    async def test_sign_out_needs_the_token(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        await browser.open_rx(code, DOB)
        refused = await browser.client.post(f"/rx/{code}/sign-out", data={})
        assert refused.status_code == 403


class TestWhatTheViewShows:
    async def test_where_it_was_dispensed_and_who_looked(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        pharmacy = await api.pharmacy()
        looked = await api.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        assert looked.status_code == 200
        await dispense(
            api, pharmacy, code, [{"line_no": 1, "registration_no": product.registration_no, "quantity": 4}]
        )
        browser = browsers()
        await browser.open_rx(code, DOB)
        view = await browser.get(f"/rx/{code}")
        where = section(view.text, "dispensed")
        pharmacy_name = looked.json()["facility_name"]  # the facility's name, read back for the log check
        outlet = re.search(r"<strong>(Nhà thuốc [^<]+)</strong>", where)
        assert outlet is not None
        assert f"{product.name} × 4" in where
        assert "data-remaining>6<" in view.text and "data-dispensed>4<" in view.text
        log = section(view.text, "access-log")
        assert outlet.group(1) in log  # the pharmacy, by name
        assert pharmacy_name in log  # the facility, by name
        assert log.count('data-actor-kind="patient"') == 2  # opened, then viewed
        actions = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers)
        kinds = [(e["actor_kind"], e["action"]) for e in actions.json()]
        assert ("patient", "patient_view") in kinds and ("pharmacy", "dispense") in kinds

    async def test_the_cheapest_outlets_for_the_remaining_basket(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        first = w.products["normal"]
        twin = await api.product(ingredient=first.active_ingredient)  # same ingredient, strength, form
        second = await api.product(ingredient=f"{first.active_ingredient}-b", strength="250mg")
        payload = payload_for(w, items=[first.line(quantity=10), second.line(quantity=4)])
        created = await api.submit(w.facility, w.prescriber.sign(payload))
        code = created.json()["code"]
        everything = await api.pharmacy(province="01")
        partial = await api.pharmacy(province="01")
        elsewhere = await api.pharmacy(province="79")
        await publish(
            api,
            everything,
            (first.registration_no, 1200, first.unit),
            (twin.registration_no, 900, twin.unit),
            (second.registration_no, 3000, second.unit),
        )
        await publish(api, partial, (twin.registration_no, 500, twin.unit))
        await publish(
            api,
            elsewhere,
            (first.registration_no, 100, first.unit),
            (second.registration_no, 100, second.unit),
        )
        # 3 of the first line are bought: the basket is what remains.
        await dispense(
            api, partial, code, [{"line_no": 1, "registration_no": twin.registration_no, "quantity": 3}]
        )
        browser = browsers()
        await browser.open_rx(code, DOB)
        view = await browser.get(f"/rx/{code}")
        rows = re.findall(r'data-covered="(\d+)">.*?data-total="(\d+)"', section(view.text, "basket"), re.S)
        # Whole basket first: 7 x 900 (the cheaper twin) + 4 x 3000; then the outlet with one line.
        assert rows == [("2", str(7 * 900 + 4 * 3000)), ("1", str(7 * 500))]
        south = await browser.get(f"/rx/{code}?province=79")
        assert re.findall(
            r'data-covered="(\d+)">.*?data-total="(\d+)"', section(south.text, "basket"), re.S
        ) == [("2", str(7 * 100 + 4 * 100))]

    async def test_nothing_left_to_buy_shows_no_basket(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        pharmacy = await api.pharmacy()
        await dispense(
            api, pharmacy, code, [{"line_no": 1, "registration_no": product.registration_no, "quantity": 10}]
        )
        browser = browsers()
        await browser.open_rx(code, DOB)
        view = await browser.get(f"/rx/{code}")
        assert 'data-status="dispensed"' in view.text
        assert "data-covered" not in section(view.text, "basket")

    async def test_the_view_reads_in_english_too(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        await browser.open_rx(code, DOB)
        view = await browser.get(f"/rx/{code}?lang=en")
        assert "Who has looked at it" in view.text and "Where the rest costs least" in view.text


class TestTheAccessKey:
    async def test_the_code_and_the_date_of_birth_alone_open_nothing(
        self, api: Api, browsers: Browsers
    ) -> None:
        """What a pharmacy can learn (code, name, birth year; even the full date) is not enough."""
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = browsers()
        real = browser.access_key(code)
        # One letter off: the key's last letter is itself a Z in one key of 32.
        one_off = real[:-1] + ("Y" if real.endswith("Z") else "Z")
        for key in ("", "AAAAAAAAAAAA", one_off):
            refused = await browser.open_rx(code, DOB, key=key)
            assert refused.status_code in (401, 422)
            assert browser.session_cookie is None
        looked = await api.client.get(
            f"/gateway/v1/prescriptions/{code}", headers=(await api.pharmacy()).headers
        )
        assert browser.access_key(code) not in looked.text

    async def test_the_papers_link_carries_the_key_and_only_the_date_is_asked(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        view = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        link = view.json()["patient_url"]
        browser = browsers()
        key = browser.access_key(code)
        assert link.endswith(f"/rx/{code}?k={key}")
        assert view.json()["patient_access_key"].replace("-", "") == key
        page = await browser.get(f"/rx/{code}?k={key}")
        assert f'name="access_key" value="{key}"' in page.text and 'type="hidden"' in page.text
        # Typed from the paper: dashes, spaces and case do not matter.
        typed = f" {key[:4].lower()}-{key[4:8]} {key[8:]} "
        assert (await browser.open_rx(code, "15/03/1980", key=typed)).status_code == 303

    async def test_a_junk_key_in_the_link_is_not_echoed(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        page = await browsers().get(f'/rx/{code}?k="><script>x</script>')
        assert page.status_code == 200 and "<script>x" not in page.text
        assert 'name="access_key" value=' not in page.text


class TestThrottle:
    async def test_wrong_keys_are_refused_per_code_from_any_address_but_not_the_patient(
        self, tuned_consoles: Harness, tuned_browsers: Browsers
    ) -> None:
        api = tuned_consoles.api
        w: World = await api.world()
        code = (await api.prescribe(w))["code"]
        for _ in range(3):
            # A new address for every guess: the code's own counter refuses them all the same.
            assert (await tuned_browsers().open_rx(code, DOB, key="WRONGWRONG12")).status_code == 401
        blocked = await tuned_browsers().open_rx(code, DOB, key="WRONGWRONG13")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        # The patient, with the paper's key, opens it all the same.
        patient = tuned_browsers()
        assert (await patient.open_rx(code, DOB)).status_code == 303
        assert patient.session_cookie is not None

    async def test_wrong_dates_with_the_right_key_are_limited_per_code(
        self, tuned_consoles: Harness, tuned_browsers: Browsers
    ) -> None:
        api = tuned_consoles.api
        w: World = await api.world()
        code = (await api.prescribe(w))["code"]
        other = (await api.prescribe(w, notes="Lần khám thứ hai"))["code"]
        browser = tuned_browsers()
        statuses = [(await browser.open_rx(code, f"1980-01-0{day}")).status_code for day in (1, 2, 3)]
        assert statuses == [401, 401, 401]
        blocked = await browser.open_rx(code, DOB)
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= tuned_consoles.settings.patient_view_window_seconds
        assert browser.session_cookie is None
        # From another address the code stays refused: it is the code that was guessed at.
        assert (await tuned_browsers().open_rx(code, DOB)).status_code == 429
        # Another prescription from this address still opens.
        assert (await browser.open_rx(other, DOB)).status_code == 303

    async def test_an_address_guessing_keys_across_codes_is_throttled(
        self, tuned_consoles: Harness, tuned_browsers: Browsers
    ) -> None:
        api = tuned_consoles.api
        w: World = await api.world()
        code = (await api.prescribe(w))["code"]
        browser = tuned_browsers()
        limit = (
            tuned_consoles.settings.throttle_block_failures * tuned_consoles.settings.throttle_address_factor
        )
        for n in range(limit):
            assert (await browser.open_rx(f"01001{n:07d}-c", DOB, key="WRONGWRONG12")).status_code == 401
        assert (await browser.open_rx(code, DOB, key="WRONGWRONG12")).status_code == 429
        # The right key still opens from this very address.
        assert (await browser.open_rx(code, DOB)).status_code == 303


class TestConsoleActionsInTheLog:
    async def test_every_logged_action_has_words_in_both_languages(self) -> None:
        for action in AccessAction:
            for lang in web.LANGUAGES:
                assert web.MESSAGES.text(lang, f"rx.action.{action.value}") != f"rx.action.{action.value}", (
                    action
                )
