"""Production starts only with the keys every process shares, and says so.

Without ERX_IDENTITY_KEY each process would generate keys into its own data directory and
encrypt identity numbers the others cannot read; without ERX_SIGNING_KEY each would sign QR codes
and derive patients' access keys with a key the others do not hold. `erx serve`, `erx db upgrade`
and the deployed ASGI factories all refuse before doing anything, naming the setting.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit.pii import PiiKeys
from kit.settings import Settings
from tests.conftest import new_signing_key
from tests.pg import Cluster, free_port

pytestmark = pytest.mark.timeout(180)

# Never contacted: the settings are refused before any connection.
UNREACHABLE = "postgresql://erx@127.0.0.1:1/erx"
REFUSAL = "production needs ERX_IDENTITY_KEY"
SIGNING_REFUSAL = "production needs ERX_SIGNING_KEY"
IDENTITY_KEY = PiiKeys.generate().to_json()
SIGNING_KEY = new_signing_key()


def _env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERX_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    return inherited | {
        "ERX_ENVIRONMENT": "production",
        "ERX_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        **extra,
    }


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A process that wrongly started serving would stop here, as a failure.
    return subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


class TestWithoutIdentityKey:
    def test_erx_serve_refuses_and_names_the_setting(self, tmp_path: Path) -> None:
        r = _run("erx", "serve", "--port", str(free_port()), env=_env(tmp_path, UNREACHABLE))
        assert r.returncode == 2, r.stderr
        assert REFUSAL in r.stderr and "Traceback" not in r.stderr
        # Nothing of its own was made: no keys, no database file.
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("factory", ["erx.app:create_core_app", "erx.app:create_gateway_app"])
    def test_a_deployed_factory_refuses(self, tmp_path: Path, factory: str) -> None:
        env = _env(tmp_path, UNREACHABLE)
        r = _run("uvicorn", "--factory", factory, "--port", str(free_port()), env=env)
        assert r.returncode != 0
        assert REFUSAL in r.stdout + r.stderr
        assert list(tmp_path.iterdir()) == []


class TestWithoutSigningKey:
    def test_the_settings_refuse_and_name_the_setting(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=SIGNING_REFUSAL):
            Settings(
                environment="production",
                DATABASE_URL=UNREACHABLE,
                identity_key=IDENTITY_KEY,
                data_dir=tmp_path,
            )

    def test_erx_serve_refuses_and_names_the_setting(self, tmp_path: Path) -> None:
        env = _env(tmp_path, UNREACHABLE, ERX_IDENTITY_KEY=IDENTITY_KEY)
        r = _run("erx", "serve", "--port", str(free_port()), env=env)
        assert r.returncode == 2, r.stderr
        assert SIGNING_REFUSAL in r.stderr and "Traceback" not in r.stderr
        # No key of its own was generated into the data directory.
        assert list(tmp_path.iterdir()) == []

    def test_a_deployed_factory_refuses(self, tmp_path: Path) -> None:
        env = _env(tmp_path, UNREACHABLE, ERX_IDENTITY_KEY=IDENTITY_KEY)
        r = _run("uvicorn", "--factory", "erx.app:create_gateway_app", "--port", str(free_port()), env=env)
        assert r.returncode != 0
        assert SIGNING_REFUSAL in r.stdout + r.stderr
        assert list(tmp_path.iterdir()) == []


class TestWithBothKeys:
    async def test_production_migrates_with_the_keys_and_not_without(
        self, pg_cluster: Cluster, tmp_path: Path
    ) -> None:
        await pg_cluster.execute('DROP DATABASE IF EXISTS "erx_startup"', 'CREATE DATABASE "erx_startup"')
        url = pg_cluster.url("erx_startup")
        try:
            refused = await asyncio.to_thread(_run, "erx", "db", "upgrade", env=_env(tmp_path / "a", url))
            assert refused.returncode == 2 and REFUSAL in refused.stderr
            env = _env(tmp_path / "b", url, ERX_IDENTITY_KEY=IDENTITY_KEY)
            unsigned = await asyncio.to_thread(_run, "erx", "db", "upgrade", env=env)
            assert unsigned.returncode == 2 and SIGNING_REFUSAL in unsigned.stderr
            env = _env(tmp_path / "c", url, ERX_IDENTITY_KEY=IDENTITY_KEY, ERX_SIGNING_KEY=SIGNING_KEY)
            done = await asyncio.to_thread(_run, "erx", "db", "upgrade", env=env)
            assert done.returncode == 0, done.stderr
            assert (
                REFUSAL not in done.stdout + done.stderr and SIGNING_REFUSAL not in done.stdout + done.stderr
            )
        finally:
            await pg_cluster.execute('DROP DATABASE IF EXISTS "erx_startup" WITH (FORCE)')
