"""Demo data loads once and every credential in the file works; the walk-through prescribes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from eprescribe.registry import service as registry
from erx.demo.data import credentials_path, load_demo
from pharmacy_gateway.prices.models import PriceListing
from tests.clients import erx_command
from tests.conftest import Harness, make_settings


class TestDemoData:
    async def test_loads_once_and_credentials_work(self, harness: Harness) -> None:
        path = await load_demo(harness.runtime)
        assert path == credentials_path(harness.settings)
        first = path.read_text()
        assert await load_demo(harness.runtime) == path
        assert path.read_text() == first, "a second load must not change the credentials"
        creds = json.loads(first)
        api = harness.api
        admin = await api.token(
            "/api/v1/auth/token", creds["admin"]["client_id"], creds["admin"]["client_secret"]
        )
        assert admin.status_code == 200
        for facility in creds["facilities"]:
            r = await api.token("/api/v1/auth/token", facility["facility_code"], facility["client_secret"])
            assert r.status_code == 200
            assert all(p["private_jwk"]["d"] for p in facility["prescribers"])
            for prescriber in facility["prescribers"]:
                # Each demo prescriber signs in through the national protocol with its password.
                login = await api.client.post(
                    "/api/auth/dang-nhap-bac-si",
                    json={
                        "ma_lien_thong_co_so_kham_chua_benh": facility["facility_code"],
                        "ma_lien_thong_bac_si": prescriber["prescriber_id"],
                        "password": prescriber["password"],
                    },
                )
                assert login.status_code == 200, login.text
                assert login.json()["token_type"] == "bearer"
        assert {p["controlled_licence"] for p in creds["pharmacies"]} == {True, False}
        catalogue = await api.client.get("/api/v1/drugs", params={"category": "supplement"})
        assert catalogue.json()["total"] >= 25
        listed = await api.client.get("/portal/api/v1/prices", params={"q": "paracetamol", "limit": 100})
        assert listed.json()["total"] > 0
        async with harness.runtime.database.sessionmaker() as session:
            for pharmacy in creds["pharmacies"]:
                outlet = await registry.get_pharmacy(session, pharmacy["connection_code"])
                assert outlet is not None
                own = await session.execute(
                    select(func.count())
                    .select_from(PriceListing)
                    .where(col(PriceListing.pharmacy_id) == outlet.id)
                )
                assert own.scalar_one() > 100, pharmacy["name"]


def erx_in(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `erx` command on an embedded database of its own in `tmp_path`."""
    return erx_command(make_settings(tmp_path, None), *args)


class TestDemoPrescribe:
    def test_walkthrough_prints_code_status_and_qr(self, tmp_path: Path) -> None:
        assert erx_in(tmp_path, "db", "upgrade").returncode == 0
        result = erx_in(tmp_path, "demo", "prescribe", "--url", "http://127.0.0.1:9")
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert re.search(r"Code: 01001[0-9A-Z]{7}-c", out)
        assert "Status: active" in out
        assert "█" in out and "QR text" in out
        assert (tmp_path / "demo-credentials.json").exists()

    def test_refuses_an_unmigrated_database_instead_of_migrating_it(self, tmp_path: Path) -> None:
        result = erx_in(tmp_path, "demo", "prescribe", "--url", "http://127.0.0.1:9")
        assert result.returncode == 2
        assert "erx db upgrade" in result.stdout
        assert not (tmp_path / "erx.sqlite3").exists(), "nothing may be migrated behind the operator's back"
