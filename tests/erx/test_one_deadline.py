"""One deadline: the API answers, the QR signature, the paper, both consoles and the patient's page
all carry the same instant, the end (23:59:59, Vietnam time) of the collection window's last day."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from kit.time import VIETNAM_TIME
from tests.clients import Browsers
from tests.conftest import Harness
from tests.eprescribe.console.test_console import SUBMIT, signed_in
from tests.factories import Api, payload_for

TIME = re.compile(r'<time datetime="([^"]+)" data-deadline>([^<]+)</time>')


def deadlines(html: str) -> set[tuple[str, str]]:
    return set(TIME.findall(html))


class TestOneDeadline:
    async def test_every_door_and_page_shows_the_same_instant(
        self, harness: Harness, api: Api, browsers: Browsers
    ) -> None:
        w, doctor = await signed_in(api, browsers)
        payload = payload_for(w)
        created = (await doctor.post_json(SUBMIT, {"jws": w.prescriber.sign(payload)})).json()
        code, instant = created["code"], created["valid_until"]
        issued = datetime.fromisoformat(payload["issued_at"]).astimezone(VIETNAM_TIME)
        expected_day = issued.date() + timedelta(days=5)
        assert instant == f"{expected_day.isoformat()}T23:59:59+07:00"
        shown = (instant, f"đến hết ngày {expected_day:%d/%m/%Y} (23:59:59)")

        # The APIs: the facility's read and the pharmacy gateway's lookup.
        read = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert read.json()["valid_until"] == instant
        pharmacy = await api.pharmacy()
        looked_up = await api.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        assert looked_up.json()["valid_until"] == instant
        # The national signature on the QR signs that instant too.
        signed = harness.runtime.keyring.verify_compact(read.json()["qr_text"].split(".", 1)[1])
        assert signed["v"] == int(datetime.fromisoformat(instant).timestamp())

        # The paper and the prescriber's recent list.
        paper = await doctor.get(f"/console/prescriber/prescriptions/{code}")
        assert deadlines(paper.text) == {shown}
        recent = await doctor.get("/console/prescriber/recent")
        assert shown in deadlines(recent.text)

        # The pharmacist's desk.
        counter = browsers()
        await counter.as_pharmacist(pharmacy)
        desk = await counter.post_json("/console/pharmacy/api/lookup", {"text": code})
        assert deadlines(desk.text) == {shown}

        # The patient's own page.
        patient = browsers()
        opened = await patient.open_rx(code, payload["patient"]["date_of_birth"])
        assert opened.status_code == 303
        view = await patient.get(f"/rx/{code}")
        assert deadlines(view.text) == {shown}
        english = await patient.get(f"/rx/{code}?lang=en")
        assert deadlines(english.text) == {(instant, f"until the end of {expected_day:%d/%m/%Y} (23:59:59)")}
