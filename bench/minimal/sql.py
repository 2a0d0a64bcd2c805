"""The SQL the system issues per request, in the order it issues it: the limit apps run exactly this.

Observed with `log_statement = 'all'` on PostgreSQL 15 for one request of each kind (system at
commit 573f93a, SQLAlchemy 2.1 + asyncpg). To look again: `ALTER SYSTEM SET log_statement = 'all'`
and `SELECT pg_reload_conf()` on the bench cluster (psql -h 127.0.0.1 -p 55432 -U postgres
erx_bench, run as the postgres user), send one request, read var/bench/pg/log. Every
request also starts with `BEGIN; ROLLBACK;` on its connection: SQLAlchemy's `pool_pre_ping`
(not a statement of the transaction, so the limit apps do not repeat it). When the system's SQL
changes, update this file: it is the one place the limit apps read their statements from.

lookup (GET /gateway/v1/prescriptions/{code}), one transaction:
    PHARMACY_BY_CODE      token's client re-checked (status, credentials version)
    THROTTLE_VERDICT      failures of this connection code and address in the window
    PRESCRIPTION_BY_CODE
    INSERT_ACCESS_LOG     action 'lookup'
    ITEMS_OF              the lines
    PRESCRIBER_BY_ID      prescriber name
    FACILITY_BY_CODE      facility name
    SUBSTITUTES           products per (ingredient, strength, form) of all lines, one query
  by QR text: the same, plus the national ES256 signature of the QR verified (CPU only).

dispense (POST /gateway/v1/prescriptions/{code}/dispenses), one transaction:
    PHARMACY_BY_CODE, CLAIM_IDEMPOTENCY, THROTTLE_VERDICT, PRESCRIPTION_BY_CODE,
    LOCK_PRESCRIPTION (FOR UPDATE), ITEMS_OF, DRUGS_BY_REGISTRATION,
    SHIFT_QUANTITY (per line), ITEMS_OF (status settled from the lines), SET_STATUS,
    INSERT_DISPENSE, INSERT_DISPENSE_LINES, INSERT_ACCESS_LOG ('dispense'), COMPLETE_IDEMPOTENCY

submit (POST /api/v1/prescriptions), one transaction:
    FACILITY_BY_CODE (token's client re-check), CLAIM_IDEMPOTENCY, PRESCRIBER_BY_ID (the JWS's
    kid; then one ES256 verification), PRESCRIBER_WORKS_AT, DRUGS_BY_REGISTRATION (when a line
    names a product), CATEGORIES_FOR (per line without a registration number), PAYLOAD_SEEN,
    CODE_EXISTS, SAVEPOINT + INSERT_PRESCRIPTION + RELEASE, INSERT_ITEMS (one multi-row
    statement), INSERT_ACCESS_LOG ('create'), COMPLETE_IDEMPOTENCY
    (the QR text stored with the row is signed with the national key: one ES256 signature)
"""

from __future__ import annotations

PHARMACY_BY_CODE = (
    "SELECT pharmacy.id, pharmacy.connection_code, pharmacy.name, pharmacy.kind, pharmacy.province_code, "
    "pharmacy.address, pharmacy.latitude, pharmacy.longitude, pharmacy.controlled_licence, pharmacy.secret_hash, "
    "pharmacy.status, pharmacy.credentials_version, pharmacy.created_at "
    "FROM pharmacy WHERE pharmacy.connection_code = $1::VARCHAR"
)
FACILITY_BY_CODE = (
    "SELECT facility.facility_code, facility.name, facility.province_code, facility.secret_hash, "
    "facility.status, facility.credentials_version, facility.created_at "
    "FROM facility WHERE facility.facility_code = $1::VARCHAR"
)
THROTTLE_VERDICT = (
    "SELECT throttle_counter.key, throttle_counter.window_start, throttle_counter.failures "
    "FROM throttle_counter WHERE throttle_counter.key IN ($2::VARCHAR, $3::VARCHAR) "
    "AND throttle_counter.window_start > $1::TIMESTAMP WITH TIME ZONE"
)
PRESCRIPTION_COLUMNS = (
    "prescription.id, prescription.code, prescription.kind, prescription.status, prescription.facility_code, "
    "prescription.prescriber_id, prescription.issued_at, prescription.valid_until, prescription.replaces_code, "
    "prescription.replaced_by_code, prescription.patient_full_name, prescription.patient_date_of_birth, "
    "prescription.patient_gender, prescription.patient_national_id, prescription.patient_insurance_no, "
    "prescription.patient_weight_kg, prescription.patient_phone, prescription.patient_address, "
    "prescription.guardian, prescription.diagnoses, prescription.notes, prescription.follow_up_date, "
    "prescription.sensitive, prescription.jws, prescription.payload_digest, prescription.lines_digest, "
    "prescription.qr_text, prescription.cancelled_at, prescription.cancel_reason, prescription.created_at"
)
PRESCRIPTION_BY_CODE = (
    f"SELECT {PRESCRIPTION_COLUMNS} FROM prescription WHERE prescription.code = $1::VARCHAR"
)
LOCK_PRESCRIPTION = (
    f"SELECT {PRESCRIPTION_COLUMNS} FROM prescription WHERE prescription.id = $1::BIGINT "
    "AND prescription.status IN ($3::VARCHAR, $4::VARCHAR) "
    "AND prescription.valid_until >= $2::TIMESTAMP WITH TIME ZONE FOR UPDATE"
)
INSERT_ACCESS_LOG = (
    "INSERT INTO access_log (at, prescription_code, actor_kind, actor_code, action, client_address) "
    "VALUES ($1::TIMESTAMP WITH TIME ZONE, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR) "
    "RETURNING access_log.id"
)
ITEMS_OF = (
    "SELECT prescription_item.id, prescription_item.prescription_id, prescription_item.line_no, "
    "prescription_item.active_ingredient, prescription_item.strength, prescription_item.dosage_form, "
    "prescription_item.registration_no, prescription_item.quantity, prescription_item.unit, "
    "prescription_item.instructions, prescription_item.days_supply, prescription_item.dispensed, "
    "prescription_item.remaining, prescription_item.ingredient_key, prescription_item.strength_key, "
    "prescription_item.form_key FROM prescription_item "
    "WHERE prescription_item.prescription_id = $1::BIGINT ORDER BY prescription_item.line_no"
)
PRESCRIBER_BY_ID = (
    "SELECT prescriber.prescriber_id, prescriber.full_name, prescriber.license_no, prescriber.public_jwk, "
    "prescriber.key_thumbprint, prescriber.controlled_allowed, prescriber.status, prescriber.created_at "
    "FROM prescriber WHERE prescriber.prescriber_id = $1::VARCHAR"
)
DRUG_COLUMNS = (
    "drug.id, drug.registration_no, drug.name, drug.active_ingredient, drug.strength, drug.dosage_form, "
    "drug.unit, drug.packaging, drug.manufacturer, drug.country, drug.category, drug.declared_price, "
    "drug.ingredient_key, drug.strength_key, drug.form_key, drug.search_text, drug.created_at, drug.updated_at"
)
# The system expands `(keys) IN ((..), (..))` with one triple per distinct key of the lines; the
# limit apps pass the same keys as three arrays (one statement, one round trip, same index).
SUBSTITUTES = (
    f"SELECT {DRUG_COLUMNS} FROM drug WHERE (drug.ingredient_key, drug.strength_key, drug.form_key) IN "
    "(SELECT * FROM unnest($1::VARCHAR[], $2::VARCHAR[], $3::VARCHAR[])) "
    "ORDER BY drug.declared_price NULLS LAST, drug.name"
)
DRUGS_BY_REGISTRATION = f"SELECT {DRUG_COLUMNS} FROM drug WHERE drug.registration_no = ANY($1::VARCHAR[])"
CLAIM_IDEMPOTENCY = (
    "INSERT INTO idempotency_record (scope, key, request_hash, created_at) "
    "VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::TIMESTAMP WITH TIME ZONE) "
    "ON CONFLICT (scope, key) DO NOTHING RETURNING idempotency_record.id"
)
COMPLETE_IDEMPOTENCY = (
    "UPDATE idempotency_record SET status_code=$1::INTEGER, response_body=$2::VARCHAR "
    "WHERE idempotency_record.id = $3::BIGINT"
)
SHIFT_QUANTITY = (
    "UPDATE prescription_item SET dispensed=(prescription_item.dispensed + $1::INTEGER), "
    "remaining=(prescription_item.remaining - $2::INTEGER) "
    "WHERE prescription_item.prescription_id = $3::BIGINT AND prescription_item.line_no = $4::INTEGER "
    "AND prescription_item.remaining >= $5::INTEGER AND prescription_item.dispensed >= $6::INTEGER "
    "RETURNING prescription_item.dispensed, prescription_item.remaining"
)
SET_STATUS = (
    "UPDATE prescription SET status=$1::VARCHAR WHERE prescription.id = $2::BIGINT "
    "AND prescription.status IN ($3::VARCHAR, $4::VARCHAR, $5::VARCHAR)"
)
INSERT_DISPENSE = (
    "INSERT INTO dispense (dispense_id, pharmacy_id, prescription_id, prescription_code, pharmacist_full_name, "
    "pharmacist_license_no, created_at, voided_at, void_reason) VALUES ($1::VARCHAR, $2::INTEGER, $3::BIGINT, "
    "$4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::TIMESTAMP WITH TIME ZONE, $8::TIMESTAMP WITH TIME ZONE, "
    "$9::VARCHAR) RETURNING dispense.id"
)
INSERT_DISPENSE_LINES = (
    "INSERT INTO dispense_line (dispense_id, position, line_no, registration_no, quantity, unit_price, batch_no, "
    "expiry_date) SELECT $1::BIGINT, * FROM unnest($2::INTEGER[], $3::INTEGER[], $4::VARCHAR[], $5::INTEGER[], "
    "$6::BIGINT[], $7::VARCHAR[], $8::DATE[]) RETURNING dispense_line.id"
)
PRESCRIBER_WORKS_AT = (
    "SELECT prescriber_facility.prescriber_id, prescriber_facility.facility_code FROM prescriber_facility "
    "WHERE prescriber_facility.prescriber_id = $1::VARCHAR AND prescriber_facility.facility_code = $2::VARCHAR"
)
CATEGORIES_FOR = (
    "SELECT DISTINCT drug.category FROM drug WHERE drug.ingredient_key = $1::VARCHAR "
    "AND drug.strength_key = $2::VARCHAR AND drug.form_key = $3::VARCHAR"
)
PAYLOAD_SEEN = "SELECT prescription.id FROM prescription WHERE prescription.payload_digest = $1::VARCHAR"
CODE_EXISTS = "SELECT prescription.id FROM prescription WHERE prescription.code = $1::VARCHAR"
INSERT_PRESCRIPTION = (
    "INSERT INTO prescription (code, kind, status, facility_code, prescriber_id, issued_at, valid_until, "
    "replaces_code, replaced_by_code, patient_full_name, patient_date_of_birth, patient_gender, "
    "patient_national_id, patient_insurance_no, patient_weight_kg, patient_phone, patient_address, guardian, "
    "diagnoses, notes, follow_up_date, sensitive, jws, payload_digest, lines_digest, qr_text, cancelled_at, "
    "cancel_reason, created_at) VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, "
    "$6::TIMESTAMP WITH TIME ZONE, $7::TIMESTAMP WITH TIME ZONE, $8::VARCHAR, $9::VARCHAR, $10::VARCHAR, "
    "$11::DATE, $12::VARCHAR, $13::VARCHAR, $14::VARCHAR, $15::FLOAT, $16::VARCHAR, $17::VARCHAR, $18::JSON, "
    "$19::JSON, $20::TEXT, $21::DATE, $22::BOOLEAN, $23::TEXT, $24::VARCHAR, $25::VARCHAR, $26::TEXT, "
    "$27::TIMESTAMP WITH TIME ZONE, $28::VARCHAR, $29::TIMESTAMP WITH TIME ZONE) RETURNING prescription.id"
)
INSERT_ITEMS = (
    "INSERT INTO prescription_item (prescription_id, line_no, active_ingredient, strength, dosage_form, "
    "registration_no, quantity, unit, instructions, days_supply, dispensed, remaining, ingredient_key, "
    "strength_key, form_key) SELECT $1::BIGINT, * FROM unnest($2::INTEGER[], $3::VARCHAR[], $4::VARCHAR[], "
    "$5::VARCHAR[], $6::VARCHAR[], $7::INTEGER[], $8::VARCHAR[], $9::VARCHAR[], $10::INTEGER[], $11::INTEGER[], "
    "$12::INTEGER[], $13::VARCHAR[], $14::VARCHAR[], $15::VARCHAR[]) RETURNING prescription_item.id"
)
