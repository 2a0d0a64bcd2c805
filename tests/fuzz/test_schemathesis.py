"""Fuzzing in CI: schemathesis against the core, the gateway and the portal, on both engines.

Bounded: `FUZZ_EXAMPLES` generated requests per operation and mode (valid, invalid), about
a minute per engine on this machine.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from erx.app import create_core_app, create_gateway_app, create_portal_app
from kit.runtime import Runtime
from tests.conftest import Harness, HarnessFactory
from tests.fuzz.runner import Report, fuzz, serve

FUZZ_EXAMPLES = int(os.environ.get("ERX_FUZZ_EXAMPLES", "12"))
FACTORIES = {"core": create_core_app, "gateway": create_gateway_app, "portal": create_portal_app}


@pytest.fixture(params=["sqlite", "postgresql"])
async def fuzzed(request: pytest.FixtureRequest, make_harness: HarnessFactory) -> Harness:
    # The fuzzer is one client sending as fast as it can: no quota may cut it short.
    return await make_harness(str(request.param), client_quota_per_second=1e6, client_quota_burst=10**6)


class TestSchemathesis:
    @pytest.mark.parametrize("service", sorted(FACTORIES))
    @pytest.mark.timeout(900)
    async def test_no_5xx_answers_match_schema_errors_are_problems(
        self, fuzzed: Harness, service: str
    ) -> None:
        api = fuzzed.api
        world = await api.world()
        pharmacy = await api.pharmacy(controlled=True)
        admin = await api.admin_headers()
        # A real prescription, so that reads of it exist beside the random codes.
        await api.prescribe(world)

        def headers_for(_method: str, path: str) -> dict[str, str]:
            if path.endswith("/auth/token") or path.startswith("/portal") or path in ("/healthz", "/readyz"):
                return {}
            if path.startswith("/gateway"):
                return pharmacy.headers
            if path.startswith("/api/v1/prescriptions"):
                return world.facility.headers
            return admin

        report = Report()
        app = FACTORIES[service](runtime=Runtime.build(fuzzed.settings))
        with serve(app) as base:
            await asyncio.to_thread(fuzz, base, headers_for, examples=FUZZ_EXAMPLES, report=report)
        print(
            f"\nfuzz {service} on {fuzzed.engine}: {report.operations} operations, "
            f"{report.requests} requests, statuses {sorted(report.by_status.items())}"
        )
        assert report.operations > 0 and report.requests >= report.operations
        assert not report.failures, "\n".join(report.failures)
