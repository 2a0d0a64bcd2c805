"""prescriptions: identity numbers and the signed payload encrypted at rest, blind indexes to find them

Revision ID: 20261203_identity_encrypted
Revises: 20261203_patient_search
Create Date: 2026-12-03 10:00:00

Citizen IDs, insurance numbers, a guardian's citizen ID and the prescriber's JWS (whose payload
holds them) are stored AES-256-GCM encrypted under the keys of ERX_IDENTITY_KEY (kit/pii.py), each
value naming its key. The plaintext indexes go; HMAC blind indexes take their place, so the
console still finds a patient by citizen ID or insurance number. Existing rows are encrypted
here, batch by batch. Not for a rolling upgrade: the previous release cannot read what this one
writes, so stop it first (or run `erx pii rotate --reencrypt-only` after it stopped, which
encrypts anything it wrote meanwhile).
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from kit import pii

revision: str = "20261203_identity_encrypted"
down_revision: str | Sequence[str] | None = "20261203_patient_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NATIONAL_ID = "prescription.patient_national_id"
INSURANCE_NO = "prescription.patient_insurance_no"
GUARDIAN = "prescription.guardian"
JWS = "prescription.jws"
BATCH = 1000

# The columns as stored, with their plain types: nothing here goes through the models.
RX = sa.table(
    "prescription",
    sa.column("id", sa.BigInteger),
    sa.column("code", sa.String),
    sa.column("patient_national_id", sa.String),
    sa.column("patient_insurance_no", sa.String),
    sa.column("patient_national_id_index", sa.String),
    sa.column("patient_insurance_no_index", sa.String),
    sa.column("guardian", sa.JSON),
    sa.column("jws", sa.Text),
)


def _rewrite(transform: Callable[[pii.PiiKeys, Any], dict[str, Any]]) -> None:
    bind = op.get_bind()
    keys = pii.keys_of(bind.dialect)
    update = (
        sa.update(RX)
        .where(RX.c.id == sa.bindparam("k_id"), RX.c.code == sa.bindparam("k_code"))
        .values(
            patient_national_id=sa.bindparam("v_national_id"),
            patient_insurance_no=sa.bindparam("v_insurance_no"),
            patient_national_id_index=sa.bindparam("v_national_id_index"),
            patient_insurance_no_index=sa.bindparam("v_insurance_no_index"),
            guardian=sa.bindparam("v_guardian", type_=sa.JSON),
            jws=sa.bindparam("v_jws"),
        )
    )
    after = 0
    while True:
        rows = bind.execute(
            sa.select(
                RX.c.id,
                RX.c.code,
                RX.c.patient_national_id,
                RX.c.patient_insurance_no,
                RX.c.guardian,
                RX.c.jws,
            )
            .where(RX.c.id > after)
            .order_by(RX.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(update, [{"k_id": r.id, "k_code": r.code, **transform(keys, r)} for r in rows])
        after = rows[-1].id


def _guardian(value: Any, change: Callable[[str], str]) -> Any:
    guardian = json.loads(value) if isinstance(value, str) else value
    if isinstance(guardian, dict) and isinstance(guardian.get("national_id"), str):
        return {**guardian, "national_id": change(guardian["national_id"])}
    return guardian


def _encrypted(keys: pii.PiiKeys, r: Any) -> dict[str, Any]:
    nid, ins = r.patient_national_id, r.patient_insurance_no
    return {
        "v_national_id": keys.encrypt(nid, NATIONAL_ID) if nid else None,
        "v_insurance_no": keys.encrypt(ins, INSURANCE_NO) if ins else None,
        "v_national_id_index": keys.blind_index(nid.strip(), NATIONAL_ID) if nid else None,
        "v_insurance_no_index": keys.blind_index(ins.strip().upper(), INSURANCE_NO) if ins else None,
        "v_guardian": _guardian(r.guardian, lambda v: keys.encrypt(v, f"{GUARDIAN}.national_id")),
        "v_jws": keys.encrypt(r.jws, JWS),
    }


def _decrypted(keys: pii.PiiKeys, r: Any) -> dict[str, Any]:
    nid, ins = r.patient_national_id, r.patient_insurance_no
    return {
        "v_national_id": keys.decrypt(nid, NATIONAL_ID) if nid else None,
        "v_insurance_no": keys.decrypt(ins, INSURANCE_NO) if ins else None,
        "v_national_id_index": None,
        "v_insurance_no_index": None,
        "v_guardian": _guardian(r.guardian, lambda v: keys.decrypt(v, f"{GUARDIAN}.national_id")),
        "v_jws": keys.decrypt(r.jws, JWS),
    }


def upgrade() -> None:
    op.drop_index("ix_prescription_patient_insurance_no", table_name="prescription")
    op.drop_index("ix_prescription_patient_national_id", table_name="prescription")
    with op.batch_alter_table("prescription") as batch:
        batch.add_column(sa.Column("patient_national_id_index", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("patient_insurance_no_index", sa.String(length=32), nullable=True))
        for column, width in (("patient_national_id", 12), ("patient_insurance_no", 15)):
            batch.alter_column(column, existing_type=sa.String(length=width), type_=sa.String(length=100))
    _rewrite(_encrypted)
    op.create_index(
        "ix_prescription_patient_national_id_index",
        "prescription",
        ["patient_national_id_index"],
        unique=False,
    )
    op.create_index(
        "ix_prescription_patient_insurance_no_index",
        "prescription",
        ["patient_insurance_no_index"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_prescription_patient_insurance_no_index", table_name="prescription")
    op.drop_index("ix_prescription_patient_national_id_index", table_name="prescription")
    _rewrite(_decrypted)
    with op.batch_alter_table("prescription") as batch:
        for column, width in (("patient_national_id", 12), ("patient_insurance_no", 15)):
            batch.alter_column(column, existing_type=sa.String(length=100), type_=sa.String(length=width))
        batch.drop_column("patient_insurance_no_index")
        batch.drop_column("patient_national_id_index")
    op.create_index(
        op.f("ix_prescription_patient_national_id"), "prescription", ["patient_national_id"], unique=False
    )
    op.create_index(
        "ix_prescription_patient_insurance_no", "prescription", ["patient_insurance_no"], unique=False
    )
