"""prescriptions keep the prescriber's and the facility's names as issued

Revision ID: 20261203_prescription_names
Revises: 20261203_dispense_line_shard_key
Create Date: 2026-12-03 09:00:00

The names printed on a prescription are those of the day it was signed; a lookup reads them
from the prescription's own row instead of the registry. Existing rows take today's names.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_prescription_names"
down_revision: str | Sequence[str] | None = "20261203_dispense_line_shard_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prescription", sa.Column("prescriber_name", sa.String(length=200), nullable=True))
    op.add_column("prescription", sa.Column("facility_name", sa.String(length=300), nullable=True))
    op.execute(
        "UPDATE prescription SET "
        "prescriber_name = (SELECT full_name FROM prescriber "
        "WHERE prescriber.prescriber_id = prescription.prescriber_id), "
        "facility_name = (SELECT name FROM facility WHERE facility.facility_code = prescription.facility_code)"
    )
    with op.batch_alter_table("prescription") as batch:
        batch.alter_column("prescriber_name", existing_type=sa.String(length=200), nullable=False)
        batch.alter_column("facility_name", existing_type=sa.String(length=300), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("prescription") as batch:
        batch.drop_column("facility_name")
        batch.drop_column("prescriber_name")
