"""Ready for Citus: `deploy/citus.sql` satisfies Citus's rules, and every hot query stays on one shard.

Citus is not packaged for this machine, so its functions are stood in for by stubs in a schema
of their own that apply its rules: the distribution column in every primary key and unique
constraint, foreign keys between distributed tables through co-located distribution columns,
reference tables referring only to reference tables. The script runs on a migrated database
through the PostgreSQL parser and those stubs; the app then runs on the widened schema. The
co-location claim is checked on the SQL the app really sends during each hot flow.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from tests.clients import Browser, client_from
from tests.conftest import Harness, HarnessFactory
from tests.factories import dispense_body, line, prescribe

pytestmark = pytest.mark.postgres_only

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "citus.sql"

# The plan: table -> distribution column (None for reference tables).
DISTRIBUTED = {
    "prescription": "code",
    "prescription_item": "prescription_code",
    "dispense": "prescription_code",
    "dispense_line": "prescription_code",
    "access_log": "prescription_code",
    "access_log_head": "prescription_code",
    "prescription_payload": "payload_digest",
    "idempotency_record": "scope",
}
REFERENCE = {
    "admin_client",
    "facility",
    "prescriber",
    "prescriber_facility",
    "prescriber_key",
    "pharmacy",
    "drug",
    "drug_word",
    "drug_word_key",
    "throttle_counter",
    "web_session",
}
LOCAL = {"price_listing", "price_history", "price_count", "price_drug_count"}
CO_LOCATED = {
    "prescription",
    "prescription_item",
    "dispense",
    "dispense_line",
    "access_log",
    "access_log_head",
}

STUBS = r"""
CREATE SCHEMA citus_stub;
CREATE TABLE citus_stub.placement (rel regclass PRIMARY KEY, kind text NOT NULL, dist_col text, grp text);

CREATE FUNCTION citus_stub.unique_without(rel regclass, col text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(i.indexrelid::regclass::text, ', ')
    FROM pg_index i
    WHERE i.indrelid = rel AND i.indisunique
      AND NOT (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col) = ANY (i.indkey)
$$;

CREATE FUNCTION citus_stub.create_distributed_table(rel regclass, col text, colocate_with text DEFAULT 'default')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    col_type text;
    bad text;
    grp text;
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod) INTO col_type
    FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped;
    IF col_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel;
    END IF;
    bad := citus_stub.unique_without(rel, col);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'cannot create constraint on "%": unique constraints (%) must include the distribution column %', rel, bad, col;
    END IF;
    IF colocate_with = 'none' THEN
        grp := rel::text;
    ELSIF colocate_with = 'default' THEN
        grp := 'default:' || col_type;
    ELSE
        SELECT p.grp INTO grp FROM citus_stub.placement p WHERE p.rel = colocate_with::regclass AND p.kind = 'distributed';
        IF grp IS NULL THEN
            RAISE EXCEPTION 'cannot colocate with "%": it is not a distributed table', colocate_with;
        END IF;
        IF (SELECT format_type(a.atttypid, a.atttypmod) FROM citus_stub.placement p
            JOIN pg_attribute a ON a.attrelid = p.rel AND a.attname = p.dist_col
            WHERE p.rel = colocate_with::regclass) <> col_type THEN
            RAISE EXCEPTION 'cannot colocate tables % and %: distribution column types differ', rel, colocate_with;
        END IF;
    END IF;
    INSERT INTO citus_stub.placement VALUES (rel, 'distributed', col, grp);
END
$$;

CREATE FUNCTION citus_stub.create_reference_table(rel regclass) RETURNS void LANGUAGE sql AS $$
    INSERT INTO citus_stub.placement VALUES (rel, 'reference', NULL, 'reference')
$$;

CREATE FUNCTION citus_stub.citus_add_local_table_to_metadata(rel regclass, cascade_via_foreign_keys boolean DEFAULT false)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO citus_stub.placement VALUES (rel, 'local', NULL, 'coordinator')
$$;

-- Every foreign key as Citus would judge it once all the tables are placed.
CREATE FUNCTION citus_stub.problems() RETURNS SETOF text LANGUAGE sql AS $$
    WITH fk AS (
        SELECT c.conname, c.conrelid, c.confrelid, c.conkey, c.confkey,
               coalesce(src.kind, 'postgres') AS src_kind, coalesce(dst.kind, 'postgres') AS dst_kind,
               src.dist_col AS src_col, dst.dist_col AS dst_col, src.grp AS src_grp, dst.grp AS dst_grp
        FROM pg_constraint c
        LEFT JOIN citus_stub.placement src ON src.rel = c.conrelid
        LEFT JOIN citus_stub.placement dst ON dst.rel = c.confrelid
        WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
    )
    SELECT format('%s: %s table %s refers to %s table %s', conname, src_kind, conrelid::regclass, dst_kind, confrelid::regclass)
    FROM fk
    WHERE NOT (
        (src_kind = 'distributed' AND dst_kind = 'reference')
        OR (src_kind = 'reference' AND dst_kind = 'reference')
        OR (src_kind = 'local' AND dst_kind IN ('reference', 'local'))
        OR (src_kind = 'distributed' AND dst_kind = 'distributed' AND src_grp = dst_grp
            AND array_position(conkey, (SELECT attnum FROM pg_attribute WHERE attrelid = conrelid AND attname = src_col))
              = array_position(confkey, (SELECT attnum FROM pg_attribute WHERE attrelid = confrelid AND attname = dst_col)))
    )
    UNION ALL
    SELECT format('table %s is not placed', c.oid::regclass)
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname <> 'alembic_version'
      AND NOT EXISTS (SELECT 1 FROM citus_stub.placement p WHERE p.rel = c.oid)
$$;
"""


async def _connect(harness: Harness) -> asyncpg.Connection:
    url = str(harness.settings.database_url).replace("postgresql+asyncpg://", "postgresql://")
    return await asyncpg.connect(url, server_settings={"search_path": "public, citus_stub"})


class TestDistributionScript:
    async def test_applies_under_citus_rules_and_places_every_table(self, pg_harness: Harness) -> None:
        await pg_harness.runtime.dispose()
        conn = await _connect(pg_harness)
        try:
            await conn.execute(STUBS)
            async with conn.transaction():
                await conn.execute(SCRIPT.read_text(encoding="utf-8"))
            problems = [row[0] for row in await conn.fetch("SELECT * FROM citus_stub.problems()")]
            placed = {
                row["rel"]: (row["kind"], row["dist_col"], row["grp"])
                for row in await conn.fetch("SELECT rel::text, kind, dist_col, grp FROM citus_stub.placement")
            }
        finally:
            await conn.close()
        assert problems == []
        assert {t for t, (kind, _, _) in placed.items() if kind == "reference"} == REFERENCE
        assert {t for t, (kind, _, _) in placed.items() if kind == "local"} == LOCAL
        assert {t: col for t, (kind, col, _) in placed.items() if kind == "distributed"} == DISTRIBUTED
        assert {placed[t][2] for t in CO_LOCATED} == {"prescription"}
        groups = [placed[t][2] for t in ("prescription", "prescription_payload", "idempotency_record")]
        assert len(set(groups)) == 3

    async def test_the_stubs_refuse_what_citus_refuses(self, pg_harness: Harness) -> None:
        """Distributing before the keys are widened fails, as it would on Citus."""
        await pg_harness.runtime.dispose()
        conn = await _connect(pg_harness)
        try:
            await conn.execute(STUBS)
            with pytest.raises(asyncpg.RaiseError, match="must include the distribution column"):
                await conn.execute("SELECT create_distributed_table('prescription', 'code')")
            with pytest.raises(asyncpg.RaiseError, match="must include the distribution column"):
                await conn.execute("SELECT create_distributed_table('idempotency_record', 'key')")
        finally:
            await conn.close()

    async def test_the_app_runs_on_the_distributed_schema(self, make_harness: HarnessFactory) -> None:
        """The widened keys and dropped triggers change nothing the app does."""
        prepared = await make_harness("postgresql")
        await prepared.runtime.dispose()
        conn = await _connect(prepared)
        try:
            await conn.execute(STUBS)
            await conn.execute(SCRIPT.read_text(encoding="utf-8"))
        finally:
            await conn.close()
        harness = Harness(prepared.settings)
        try:
            w = await harness.api.world()
            code = await prescribe(harness.api, w)
            replay = await harness.api.submit(
                w.facility, w.prescriber.sign({**_payload(w), "notes": "same twice"})
            )
            again = await harness.api.submit(
                w.facility, w.prescriber.sign({**_payload(w), "notes": "same twice"})
            )
            assert replay.status_code == 201
            assert again.status_code in (201, 409)
            pharmacy = await harness.api.pharmacy()
            gateway = client_from(harness.app)
            looked = await gateway.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
            assert looked.status_code == 200
            sold = await gateway.post(
                f"/gateway/v1/prescriptions/{code}/dispenses",
                json=dispense_body(line(1, w.products["normal"].registration_no, 3)),
                headers={**pharmacy.headers, "Idempotency-Key": "citus-1"},
            )
            assert sold.status_code == 201, sold.text
            voided = await gateway.post(
                f"/gateway/v1/dispenses/{sold.json()['dispense_id']}/void",
                json={"reason": "nhầm"},
                headers=pharmacy.headers,
            )
            assert voided.status_code == 200, voided.text
            await gateway.aclose()
            other = await prescribe(harness.api, w)
            cancelled = await harness.client.post(
                f"/api/v1/prescriptions/{other}/cancel", json={"reason": "sai"}, headers=w.facility.headers
            )
            assert cancelled.status_code == 200, cancelled.text
        finally:
            await harness.close()


def _payload(w: Any) -> dict[str, Any]:
    from tests.factories import payload_for

    body: dict[str, Any] = payload_for(w)
    return body


# ---- co-location: the SQL of the hot flows ---------------------------------------------------

_TABLES = re.compile(r"\b(?:FROM|JOIN|UPDATE|INSERT INTO|DELETE FROM)\s+([a-z_]+)", re.I)


def unrouted(statement: str) -> list[str]:
    """The distributed tables this statement touches without naming their distribution column."""
    missing = []
    for table in dict.fromkeys(_TABLES.findall(statement)):
        column = DISTRIBUTED.get(table)
        if column is None:
            continue
        # Inserts count wherever they stand, a data-modifying CTE included.
        insert = re.search(rf"INSERT INTO {table}\s*\(([^)]*)\)", statement, re.I)
        if insert:
            if column not in [c.strip() for c in insert.group(1).split(",")]:
                missing.append(f"{table} (insert without {column})")
            continue
        where = statement.split(" WHERE ", 1)[1] if " WHERE " in statement else ""
        if not re.search(rf"\b{table}\.{column}\s*(=|IN\b)", where, re.I):
            missing.append(f"{table}.{column}")
    return missing


@asynccontextmanager
async def statements(harness: Harness) -> AsyncIterator[list[str]]:
    """Every statement the flow sends, from asyncpg's query log: it sees the ones kit.prepared
    sends straight to the driver as well as SQLAlchemy's (whose cursor events do not)."""
    seen: list[str] = []
    watched: list[Any] = []

    def record(query: Any) -> None:
        seen.append(" ".join(str(query.query).split()))

    def watch(dbapi_connection: Any, *_args: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(record)
        watched.append(driver)

    engine = harness.runtime.database.engine.sync_engine
    event.listen(engine, "checkout", watch)
    try:
        yield seen
        # asyncpg calls its query loggers soon after each statement, not during it.
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        event.remove(engine, "checkout", watch)
        for driver in watched:
            driver.remove_query_logger(record)


class TestHotQueriesStayOnOneShard:
    @pytest.mark.parametrize(
        ("statement", "missing"),
        [
            ("SELECT prescription.id FROM prescription WHERE prescription.code = $1::VARCHAR", []),
            (
                "SELECT prescription.id FROM prescription WHERE prescription.id = $1::BIGINT",
                ["prescription.code"],
            ),
            (
                "UPDATE prescription_item SET remaining=1 WHERE prescription_item.prescription_code = $1 "
                "AND prescription_item.prescription_id = $2",
                [],
            ),
            (
                "SELECT dispense.id FROM dispense WHERE dispense.dispense_id = $1",
                ["dispense.prescription_code"],
            ),
            ("INSERT INTO access_log (at, prescription_code, action) VALUES ($1, $2, $3)", []),
            (
                "INSERT INTO dispense_line (dispense_id, position) VALUES ($1, $2)",
                ["dispense_line (insert without prescription_code)"],
            ),
            (
                "UPDATE idempotency_record SET status_code=$1 WHERE idempotency_record.id = $2",
                ["idempotency_record.scope"],
            ),
            ("SELECT drug.id FROM drug WHERE drug.registration_no = $1", []),
        ],
    )
    def test_the_checker_tells_routed_from_unrouted(self, statement: str, missing: list[str]) -> None:
        assert unrouted(statement) == missing

    @pytest.mark.parametrize(
        "flow", ["submit", "read", "lookup", "lookup_qr", "dispense", "cancel", "access_log", "patient"]
    )
    async def test_every_statement_names_its_shard(self, pg_harness: Harness, flow: str) -> None:
        api = pg_harness.api
        w = await api.world()
        pharmacy = await api.pharmacy()
        code = await prescribe(api, w)
        created = await pg_harness.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        qr_text = created.json().get("qr_text") if created.status_code == 200 else None
        gateway = client_from(pg_harness.app)
        patient = Browser(pg_harness.app)
        async with statements(pg_harness) as seen:
            if flow == "submit":
                r = await api.submit(
                    w.facility, w.prescriber.sign({**_payload(w), "notes": "colocation"}), key="k-1"
                )
                assert r.status_code == 201, r.text
            elif flow == "read":
                assert (
                    await pg_harness.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
                ).is_success
            elif flow == "lookup":
                assert (
                    await gateway.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
                ).is_success
            elif flow == "lookup_qr":
                text = qr_text or code
                assert (
                    await gateway.get(f"/gateway/v1/prescriptions/{text}", headers=pharmacy.headers)
                ).is_success
            elif flow == "dispense":
                r = await gateway.post(
                    f"/gateway/v1/prescriptions/{code}/dispenses",
                    json=dispense_body(line(1, w.products["normal"].registration_no, 2)),
                    headers={**pharmacy.headers, "Idempotency-Key": "colocation-1"},
                )
                assert r.status_code == 201, r.text
            elif flow == "cancel":
                r = await pg_harness.client.post(
                    f"/api/v1/prescriptions/{code}/cancel",
                    json={"reason": "sai liều"},
                    headers=w.facility.headers,
                )
                assert r.status_code == 200, r.text
            elif flow == "access_log":
                r = await pg_harness.client.get(
                    f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers
                )
                assert r.status_code == 200
            else:
                opened = await patient.open_rx(code, "1980-03-15")
                assert opened.status_code in (200, 303)
                assert (await patient.get(f"/rx/{code}")).status_code == 200
        await gateway.aclose()
        await patient.close()
        touched = [s for s in seen if any(t in DISTRIBUTED for t in _TABLES.findall(s))]
        assert touched, "the flow reached the prescription data"
        offenders = {s[:160]: unrouted(s) for s in touched if unrouted(s)}
        assert offenders == {}
