"""registry: health-department clients, facilities, prescribers, pharmacies

Revision ID: 20261202_registry
Revises:
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261202_registry"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_client",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credentials_version", sa.Integer(), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_admin_client")),
    )
    op.create_table(
        "facility",
        sa.Column("facility_code", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credentials_version", sa.Integer(), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("facility_code", name=op.f("pk_facility")),
    )
    op.create_table(
        "pharmacy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("controlled_licence", sa.Boolean(), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credentials_version", sa.Integer(), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy")),
        sa.UniqueConstraint("connection_code", name=op.f("uq_pharmacy_connection_code")),
    )
    op.create_index(
        "ix_pharmacy_not_active",
        "pharmacy",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status <> 'active'"),
        sqlite_where=sa.text("status <> 'active'"),
    )
    op.create_index(op.f("ix_pharmacy_province_code"), "pharmacy", ["province_code"], unique=False)
    op.create_table(
        "prescriber",
        sa.Column("prescriber_id", sa.String(length=16), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("license_no", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("key_thumbprint", sa.String(length=64), nullable=False),
        sa.Column("controlled_allowed", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prescriber_id", name=op.f("pk_prescriber")),
        sa.UniqueConstraint("license_no", name=op.f("uq_prescriber_license_no")),
    )
    op.create_table(
        "prescriber_facility",
        sa.Column("prescriber_id", sa.String(length=16), nullable=False),
        sa.Column("facility_code", sa.String(length=5), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_code"],
            ["facility.facility_code"],
            name=op.f("fk_prescriber_facility_facility_code_facility"),
        ),
        sa.ForeignKeyConstraint(
            ["prescriber_id"],
            ["prescriber.prescriber_id"],
            name=op.f("fk_prescriber_facility_prescriber_id_prescriber"),
        ),
        sa.PrimaryKeyConstraint("prescriber_id", "facility_code", name=op.f("pk_prescriber_facility")),
    )


def downgrade() -> None:
    op.drop_table("prescriber_facility")
    op.drop_table("prescriber")
    op.drop_index(op.f("ix_pharmacy_province_code"), table_name="pharmacy")
    op.drop_index(
        "ix_pharmacy_not_active",
        table_name="pharmacy",
        postgresql_where=sa.text("status <> 'active'"),
        sqlite_where=sa.text("status <> 'active'"),
    )
    op.drop_table("pharmacy")
    op.drop_table("facility")
    op.drop_table("admin_client")
