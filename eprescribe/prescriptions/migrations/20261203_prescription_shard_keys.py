"""prescriptions: every line carries its prescription's code; accepted payloads keyed by digest

Revision ID: 20261203_prescription_shard_keys
Revises: 20261202_merge
Create Date: 2026-12-03 09:00:00

Readies the schema for Citus (deploy/citus.sql): the code is the distribution column, so each
line names it and lives on its prescription's shard; `prescription_payload` keeps the one-time
acceptance of a signed payload unique on a shard of its own (by digest). Backwards compatible:
while the previous release still runs, a trigger fills the code of lines it inserts without
one (the next release drops it), and `prescription.payload_digest` stays unique for its inserts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_prescription_shard_keys"
down_revision: str | Sequence[str] | None = "20261202_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILL = """
CREATE FUNCTION erx_fill_prescription_item_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.prescription_code IS NULL THEN
        SELECT code INTO NEW.prescription_code FROM prescription WHERE id = NEW.prescription_id;
    END IF;
    RETURN NEW;
END
$$
"""
TRIGGER = """
CREATE TRIGGER prescription_item_fill_code BEFORE INSERT ON prescription_item
FOR EACH ROW EXECUTE FUNCTION erx_fill_prescription_item_code()
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "prescription_payload",
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("prescription_code", sa.String(length=14), nullable=False),
        sa.PrimaryKeyConstraint("payload_digest", name=op.f("pk_prescription_payload")),
    )
    op.execute(
        "INSERT INTO prescription_payload (payload_digest, prescription_code) "
        "SELECT payload_digest, code FROM prescription"
    )
    op.add_column("prescription_item", sa.Column("prescription_code", sa.String(length=14), nullable=True))
    if postgresql:
        op.execute(
            "UPDATE prescription_item AS i SET prescription_code = p.code "
            "FROM prescription AS p WHERE p.id = i.prescription_id"
        )
        op.execute(FILL)
        op.execute(TRIGGER)
        op.alter_column("prescription_item", "prescription_code", nullable=False)
    else:
        op.execute(
            "UPDATE prescription_item SET prescription_code = "
            "(SELECT code FROM prescription WHERE prescription.id = prescription_item.prescription_id)"
        )
        with op.batch_alter_table("prescription_item") as batch:
            batch.alter_column("prescription_code", existing_type=sa.String(length=14), nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER prescription_item_fill_code ON prescription_item")
        op.execute("DROP FUNCTION erx_fill_prescription_item_code()")
        op.drop_column("prescription_item", "prescription_code")
    else:
        with op.batch_alter_table("prescription_item") as batch:
            batch.drop_column("prescription_code")
    op.drop_table("prescription_payload")
