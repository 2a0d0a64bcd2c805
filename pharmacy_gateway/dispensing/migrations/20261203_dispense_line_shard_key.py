"""dispensing: every dispense line carries its prescription's code

Revision ID: 20261203_dispense_line_shard_key
Revises: 20261203_prescription_shard_keys
Create Date: 2026-12-03 09:00:00

On Citus (deploy/citus.sql) dispenses and their lines are distributed by the prescription's code,
co-located with the prescription. Backwards compatible like the prescriptions' revision: a
trigger fills the code of lines the previous release inserts without one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_dispense_line_shard_key"
down_revision: str | Sequence[str] | None = "20261203_prescription_shard_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILL = """
CREATE FUNCTION erx_fill_dispense_line_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.prescription_code IS NULL THEN
        SELECT prescription_code INTO NEW.prescription_code FROM dispense WHERE id = NEW.dispense_id;
    END IF;
    RETURN NEW;
END
$$
"""
TRIGGER = """
CREATE TRIGGER dispense_line_fill_code BEFORE INSERT ON dispense_line
FOR EACH ROW EXECUTE FUNCTION erx_fill_dispense_line_code()
"""


def upgrade() -> None:
    op.add_column("dispense_line", sa.Column("prescription_code", sa.String(length=14), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE dispense_line AS l SET prescription_code = d.prescription_code "
            "FROM dispense AS d WHERE d.id = l.dispense_id"
        )
        op.execute(FILL)
        op.execute(TRIGGER)
        op.alter_column("dispense_line", "prescription_code", nullable=False)
    else:
        op.execute(
            "UPDATE dispense_line SET prescription_code = "
            "(SELECT prescription_code FROM dispense WHERE dispense.id = dispense_line.dispense_id)"
        )
        with op.batch_alter_table("dispense_line") as batch:
            batch.alter_column("prescription_code", existing_type=sa.String(length=14), nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER dispense_line_fill_code ON dispense_line")
        op.execute("DROP FUNCTION erx_fill_dispense_line_code()")
        op.drop_column("dispense_line", "prescription_code")
    else:
        with op.batch_alter_table("dispense_line") as batch:
            batch.drop_column("prescription_code")
