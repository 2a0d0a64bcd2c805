"""the access log becomes a hash chain per prescription, append-only

Revision ID: 20261204_audit_chain
Revises: 20261204_throttle_windows
Create Date: 2026-12-04 09:10:00

Existing entries are chained in the order they were written (time, then id), per
prescription code, and each chain's end goes into `access_log_head`. Triggers then refuse
UPDATE and DELETE on the log, on both engines.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database
from kit.audit import chain_hash, content_digest

revision: str = "20261204_audit_chain"
down_revision: str | Sequence[str] | None = "20261204_throttle_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
GUARD_MESSAGE = "access_log is append-only"


def _chain_existing() -> None:
    log = sa.table(
        "access_log",
        sa.column("id", sa.BigInteger()),
        sa.column("at", kit.database.UTCDateTime()),
        sa.column("prescription_code", sa.String()),
        sa.column("actor_kind", sa.String()),
        sa.column("actor_code", sa.String()),
        sa.column("action", sa.String()),
        sa.column("client_address", sa.String()),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    head = sa.table(
        "access_log_head",
        sa.column("prescription_code", sa.String()),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            log.c.id,
            log.c.at,
            log.c.prescription_code,
            log.c.actor_kind,
            log.c.actor_code,
            log.c.action,
            log.c.client_address,
        ).order_by(log.c.prescription_code, log.c.at, log.c.id)
    ).all()
    update = (
        sa.update(log)
        .where(log.c.id == sa.bindparam("row_id"))
        .values(
            seq=sa.bindparam("row_seq"),
            prev_hash=sa.bindparam("row_prev"),
            entry_hash=sa.bindparam("row_hash"),
        )
    )
    ends: dict[str, dict[str, object]] = {}
    pending: list[dict[str, object]] = []
    for row in rows:
        end = ends.get(row.prescription_code)
        seq = int(end["seq"]) + 1 if end else 1  # type: ignore[call-overload]
        prev = str(end["entry_hash"]) if end else ""
        digest = content_digest(
            prescription_code=row.prescription_code,
            at=row.at,
            actor_kind=row.actor_kind,
            actor_code=row.actor_code,
            action=row.action,
            client_address=row.client_address,
        )
        chained = chain_hash(prev, seq, digest)
        ends[row.prescription_code] = {
            "prescription_code": row.prescription_code,
            "seq": seq,
            "prev_hash": prev,
            "entry_hash": chained,
        }
        pending.append({"row_id": row.id, "row_seq": seq, "row_prev": prev, "row_hash": chained})
        if len(pending) >= BATCH:
            bind.execute(update, pending)
            pending = []
    if pending:
        bind.execute(update, pending)
    if ends:
        bind.execute(sa.insert(head), list(ends.values()))


def upgrade() -> None:
    op.create_table(
        "access_log_head",
        sa.Column("prescription_code", sa.String(length=14), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("prescription_code", name=op.f("pk_access_log_head")),
    )
    op.add_column("access_log", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("access_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("access_log", sa.Column("entry_hash", sa.String(length=64), nullable=True))
    _chain_existing()
    with op.batch_alter_table("access_log") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            batch.f("uq_access_log_prescription_code_seq"), ["prescription_code", "seq"]
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{GUARD_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()"
        )
    else:
        for verb in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER access_log_no_{verb} BEFORE {verb.upper()} ON access_log "
                f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_log_append_only ON access_log")
        op.execute("DROP FUNCTION access_log_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER access_log_no_{verb}")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_constraint(batch.f("uq_access_log_prescription_code_seq"), type_="unique")
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("access_log_head")
