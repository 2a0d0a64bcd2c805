"""prescriptions and their lines

Revision ID: 20261202_prescriptions
Revises: 20261202_registry
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261202_prescriptions"
down_revision: str | Sequence[str] | None = "20261202_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prescription",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("code", sa.String(length=14), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("facility_code", sa.String(length=5), nullable=False),
        sa.Column("prescriber_id", sa.String(length=16), nullable=False),
        sa.Column("issued_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaces_code", sa.String(length=14), nullable=True),
        sa.Column("replaced_by_code", sa.String(length=14), nullable=True),
        sa.Column("patient_full_name", sa.String(length=200), nullable=False),
        sa.Column("patient_date_of_birth", sa.Date(), nullable=False),
        sa.Column("patient_gender", sa.String(length=8), nullable=False),
        sa.Column("patient_national_id", sa.String(length=12), nullable=True),
        sa.Column("patient_insurance_no", sa.String(length=15), nullable=True),
        sa.Column("patient_weight_kg", sa.Float(), nullable=True),
        sa.Column("patient_phone", sa.String(length=20), nullable=True),
        sa.Column("patient_address", sa.String(length=500), nullable=True),
        sa.Column("guardian", sa.JSON(), nullable=True),
        sa.Column("diagnoses", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("follow_up_date", sa.Date(), nullable=True),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("lines_digest", sa.String(length=64), nullable=False),
        sa.Column("qr_text", sa.Text(), nullable=False),
        sa.Column("cancelled_at", kit.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_code"], ["facility.facility_code"], name=op.f("fk_prescription_facility_code_facility")
        ),
        sa.ForeignKeyConstraint(
            ["prescriber_id"],
            ["prescriber.prescriber_id"],
            name=op.f("fk_prescription_prescriber_id_prescriber"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription")),
        sa.UniqueConstraint("code", name=op.f("uq_prescription_code")),
        sa.UniqueConstraint("payload_digest", name=op.f("uq_prescription_payload_digest")),
    )
    op.create_index(
        "ix_prescription_facility_code_issued_at",
        "prescription",
        ["facility_code", "issued_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_prescription_patient_national_id"), "prescription", ["patient_national_id"], unique=False
    )
    op.create_index(
        "ix_prescription_prescriber_id_issued_at",
        "prescription",
        ["prescriber_id", "issued_at"],
        unique=False,
    )
    op.create_table(
        "prescription_item",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("prescription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("active_ingredient", sa.String(length=500), nullable=False),
        sa.Column("strength", sa.String(length=200), nullable=False),
        sa.Column("dosage_form", sa.String(length=200), nullable=False),
        sa.Column("registration_no", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("instructions", sa.String(length=1000), nullable=False),
        sa.Column("days_supply", sa.Integer(), nullable=False),
        sa.Column("dispensed", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("ingredient_key", sa.String(length=500), nullable=False),
        sa.Column("strength_key", sa.String(length=200), nullable=False),
        sa.Column("form_key", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "dispensed + remaining = quantity", name=op.f("ck_prescription_item_quantities_balance")
        ),
        sa.CheckConstraint("dispensed >= 0", name=op.f("ck_prescription_item_dispensed_not_negative")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_prescription_item_quantity_positive")),
        sa.CheckConstraint("remaining >= 0", name=op.f("ck_prescription_item_remaining_not_negative")),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescription.id"],
            name=op.f("fk_prescription_item_prescription_id_prescription"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription_item")),
        sa.UniqueConstraint(
            "prescription_id", "line_no", name=op.f("uq_prescription_item_prescription_id_line_no")
        ),
    )


def downgrade() -> None:
    op.drop_table("prescription_item")
    op.drop_index("ix_prescription_prescriber_id_issued_at", table_name="prescription")
    op.drop_index(op.f("ix_prescription_patient_national_id"), table_name="prescription")
    op.drop_index("ix_prescription_facility_code_issued_at", table_name="prescription")
    op.drop_table("prescription")
