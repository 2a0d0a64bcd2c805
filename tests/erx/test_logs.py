"""What a running server writes (stdout and stderr): no secret query value, whatever the launch.

The server here is started the careless way: uvicorn's access log left on (every deployment
passes `--no-access-log`) and spans printed by the console exporter. The patient's keyed link
`/rx/{code}?k=` and the open form's pasted link are asked for; the key shows nowhere, the
request lines and the spans are there with `k=…`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from eprescribe.prescriptions import service as prescriptions
from tests.conftest import Harness
from tests.pg import free_port
from tests.processes import until_ready

pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(120)]


def _env(harness: Harness) -> dict[str, str]:
    settings = harness.settings
    assert settings.signing_key is not None and settings.identity_key is not None
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERX_", "PROMETHEUS_", "OTEL_")) and k != "DATABASE_URL"
    }
    return inherited | {
        "ERX_ENVIRONMENT": "test",
        "ERX_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": str(settings.database_url),
        "ERX_SIGNING_KEY": settings.signing_key.get_secret_value(),
        "ERX_IDENTITY_KEY": settings.identity_key.get_secret_value(),
        "ERX_LOG_LEVEL": "debug",
        "ERX_OTEL_ENABLED": "true",
        "ERX_OTEL_EXPORTER": "console",
        # Spans are printed in batches: every 50 ms rather than 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _until_printed(log: Path, text: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while text not in await asyncio.to_thread(log.read_text):
        assert server.poll() is None and time.monotonic() < deadline, f"{text!r} never printed"
        await asyncio.sleep(0.1)


async def test_a_keyed_link_leaves_no_key_in_the_servers_output(pg_harness: Harness, tmp_path: Path) -> None:
    w = await pg_harness.api.world()
    code = (await pg_harness.api.prescribe(w))["code"]
    link = prescriptions.patient_link("http://127.0.0.1", pg_harness.runtime.keyring, code)
    key = link.rsplit("?k=", 1)[1]
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "uvicorn", "--factory", "erx.app:create_app", "--port", str(port)]
    server = await asyncio.to_thread(_start, [*command, "--log-level", "debug"], _env(pg_harness), log)
    base = f"http://127.0.0.1:{port}"
    try:
        await until_ready(base, server, time.monotonic() + 60)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            keyed = await client.get(f"/rx/{code}", params={"k": key, "lang": "en"})
            pasted = await client.get("/rx", params={"code": link})
        assert keyed.status_code == 200 and keyed.headers["referrer-policy"] == "no-referrer"
        assert pasted.status_code == 303 and key in pasted.headers["location"]
        await _until_printed(log, '"url.query": "code=', server)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
    output = await asyncio.to_thread(log.read_text)
    assert key not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"logger"' in line]
    routes = [entry.get("route") for entry in lines if entry["logger"] == "erx.request"]
    assert "/rx/{code}" in routes and "/rx" in routes
    # The spans are there (the exporter writes `…` as JSON's \u2026), their queries redacted.
    assert '"url.query": "k=\\u2026&lang=en"' in output
    assert '"url.query": "code=\\u2026"' in output
