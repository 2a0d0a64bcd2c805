"""QR codes decode back to the code and a national signature a pharmacy can check offline."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import zxingcpp
from joserfc import jws
from joserfc.jwk import KeySet
from PIL import Image

from eprescribe.prescriptions import codes
from tests.factories import Api


class TestQr:
    async def test_png_decodes_to_code_and_verifiable_signature(self, api: Api) -> None:
        world = await api.world()
        created = await api.prescribe(world)
        png = await api.client.get(
            f"/api/v1/prescriptions/{created['code']}/qr.png", headers=world.facility.headers
        )
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
        assert len(results) == 1
        text = results[0].text
        code, _, compact = text.partition(".")
        assert code == created["code"] and codes.from_scanned_text(text.lower()) == created["code"]

        jwks = (await api.client.get("/.well-known/jwks.json")).json()
        verified = jws.deserialize_compact(compact, KeySet.import_key_set(jwks), algorithms=["ES256"])
        import json

        claims = json.loads(verified.payload)
        assert (
            claims["c"] == created["code"]
            and claims["k"] == "c"
            and claims["f"] == world.facility.facility_code
        )
        record = (
            await api.client.get(f"/api/v1/prescriptions/{created['code']}", headers=world.facility.headers)
        ).json()
        assert record["qr_text"] == text

    async def test_svg_is_a_vector_qr(self, api: Api) -> None:
        world = await api.world()
        created = await api.prescribe(world)
        svg = await api.client.get(
            f"/api/v1/prescriptions/{created['code']}/qr.svg", headers=world.facility.headers
        )
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(svg.content)  # noqa: S314 - our own server's output
        assert root.tag.endswith("svg") and any(el.tag.endswith("path") for el in root.iter())
