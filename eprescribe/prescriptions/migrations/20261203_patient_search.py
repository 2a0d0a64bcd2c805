"""prescriptions: indexes to find a patient's earlier prescriptions at a facility

Revision ID: 20261203_patient_search
Revises: 20261203_prescription_names
Create Date: 2026-12-03 09:00:00

The prescriber console looks a patient up by citizen ID (already indexed), by health-insurance
number, or by name and date of birth within the facility.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261203_patient_search"
down_revision: str | Sequence[str] | None = "20261203_prescription_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_prescription_patient_insurance_no", "prescription", ["patient_insurance_no"], unique=False
    )
    op.create_index(
        "ix_prescription_facility_code_patient_date_of_birth",
        "prescription",
        ["facility_code", "patient_date_of_birth"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_prescription_facility_code_patient_date_of_birth", table_name="prescription")
    op.drop_index("ix_prescription_patient_insurance_no", table_name="prescription")
