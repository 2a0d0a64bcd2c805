"""dispenses and their lines

Revision ID: 20261202_dispensing
Revises: 20261202_prescriptions
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261202_dispensing"
down_revision: str | Sequence[str] | None = "20261202_prescriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispense",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("dispense_id", sa.String(length=32), nullable=False),
        sa.Column("pharmacy_id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("prescription_code", sa.String(length=14), nullable=False),
        sa.Column("pharmacist_full_name", sa.String(length=200), nullable=False),
        sa.Column("pharmacist_license_no", sa.String(length=64), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("voided_at", kit.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_dispense_pharmacy_id_pharmacy")
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"], ["prescription.id"], name=op.f("fk_dispense_prescription_id_prescription")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispense")),
        sa.UniqueConstraint("dispense_id", name=op.f("uq_dispense_dispense_id")),
    )
    op.create_index(
        "ix_dispense_pharmacy_id_created_at", "dispense", ["pharmacy_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_dispense_prescription_id"), "dispense", ["prescription_id"], unique=False)
    op.create_table(
        "dispense_line",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("dispense_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("registration_no", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=True),
        sa.Column("batch_no", sa.String(length=64), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_dispense_line_quantity_positive")),
        sa.CheckConstraint(
            "unit_price IS NULL OR unit_price >= 0", name=op.f("ck_dispense_line_unit_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["dispense_id"], ["dispense.id"], name=op.f("fk_dispense_line_dispense_id_dispense")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispense_line")),
        sa.UniqueConstraint("dispense_id", "position", name=op.f("uq_dispense_line_dispense_id_position")),
    )
    op.create_index(
        "ix_dispense_line_registration_no_dispense_id",
        "dispense_line",
        ["registration_no", "dispense_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_dispense_line_registration_no_dispense_id", table_name="dispense_line")
    op.drop_table("dispense_line")
    op.drop_index(op.f("ix_dispense_prescription_id"), table_name="dispense")
    op.drop_index("ix_dispense_pharmacy_id_created_at", table_name="dispense")
    op.drop_table("dispense")
