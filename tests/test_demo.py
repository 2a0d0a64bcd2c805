"""Demo data loads once and every credential in the file works; the walk-through prescribes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from eprescribe import service as registry
from erx.demo import credentials_path, load_demo
from price_portal.models import PriceListing
from tests.conftest import Harness, _settings_for
from tests.pg import Cluster


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A database of its own: the demo uses fixed facility codes."""
    engine = str(request.param)
    cluster: Cluster | None = request.getfixturevalue("pg_cluster") if engine == "postgresql" else None
    settings = await _settings_for(engine, f"erx_demo_{os.getpid()}", tmp_path, cluster)
    h = await Harness(settings).start()
    yield h
    await h.close()


class TestDemoData:
    async def test_loads_once_and_credentials_work(self, fresh: Harness) -> None:
        path = await load_demo(fresh.runtime)
        assert path == credentials_path(fresh.settings)
        first = path.read_text()
        assert await load_demo(fresh.runtime) == path
        assert path.read_text() == first, "a second load must not change the credentials"
        creds = json.loads(first)
        api = fresh.api
        admin = await api.token(
            "/api/v1/auth/token", creds["admin"]["client_id"], creds["admin"]["client_secret"]
        )
        assert admin.status_code == 200
        for facility in creds["facilities"]:
            r = await api.token("/api/v1/auth/token", facility["facility_code"], facility["client_secret"])
            assert r.status_code == 200
            assert all(p["private_jwk"]["d"] for p in facility["prescribers"])
        assert {p["controlled_licence"] for p in creds["pharmacies"]} == {True, False}
        catalogue = await api.client.get("/api/v1/drugs", params={"category": "supplement"})
        assert catalogue.json()["total"] >= 25
        listed = await api.client.get("/portal/api/v1/prices", params={"q": "paracetamol", "limit": 100})
        assert listed.json()["total"] > 0
        async with fresh.runtime.database.sessionmaker() as session:
            for pharmacy in creds["pharmacies"]:
                outlet = await registry.get_pharmacy(session, pharmacy["connection_code"])
                assert outlet is not None
                own = await session.execute(
                    select(func.count())
                    .select_from(PriceListing)
                    .where(col(PriceListing.pharmacy_id) == outlet.id)
                )
                assert own.scalar_one() > 100, pharmacy["name"]


class TestDemoPrescribe:
    def test_walkthrough_prints_code_status_and_qr(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["ERX_DATA_DIR"] = str(tmp_path)
        result = subprocess.run(
            [sys.executable, "-m", "erx", "demo", "prescribe", "--url", "http://127.0.0.1:9"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert re.search(r"Code: 01001[0-9A-Z]{7}-c", out)
        assert "Status: active" in out
        assert "█" in out and "QR text" in out
        assert (tmp_path / "demo-credentials.json").exists()
