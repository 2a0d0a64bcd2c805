"""The SQL the system issues per request, in the order it issues it: the limit apps run exactly this.

Printed by `python scripts/sql_per_request.py --full` (one request of each kind through the real
app on PostgreSQL, every statement and BEGIN/COMMIT numbered). When the system's SQL changes,
update this file: it is the one place the limit apps read their statements from. Where SQLAlchemy
renders one VALUES tuple or CASE branch per line, the limit apps pass the lines as arrays
(`unnest`): the same statement shape, rows and round trips, with one text for any line count.

lookup (GET /gateway/v1/prescriptions/{code}), one transaction, 4 statements + BEGIN/COMMIT:
    PHARMACY_BY_CODE      the token's client re-checked (status, credentials version)
    THROTTLE_VERDICT      unknown codes of this pharmacy in the window (its own quota)
    PRESCRIPTION_WITH_LINES   header (names as printed) and lines, joined
    (PRODUCTS_NAMED_OR_KEYED  substitutes of the lines' keys: only on a miss of the system's
                          per-process catalogue cache, which the limit apps keep alike)
    INSERT_ACCESS_LOG     action 'lookup'
  by QR text: the same, plus the national ES256 signature of the QR verified (CPU only).

dispense (POST /gateway/v1/prescriptions/{code}/dispenses), one transaction, 8 + BEGIN/COMMIT:
    PHARMACY_BY_CODE, CLAIM_IDEMPOTENCY, THROTTLE_VERDICT, PRESCRIPTION_WITH_LINES + FOR UPDATE,
    (PRODUCTS_NAMED_OR_KEYED on a catalogue cache miss), MOVE_QUANTITIES (lines and status in
    one statement), INSERT_DISPENSE_WITH_LINES, INSERT_ACCESS_LOG ('dispense'),
    COMPLETE_IDEMPOTENCY

submit (POST /api/v1/prescriptions), one transaction, 7 + BEGIN/COMMIT:
    FACILITY_BY_CODE (the token's client re-checked), CLAIM_IDEMPOTENCY, SIGNER_AT (the JWS's
    kid and whether they work at the facility; then one ES256 verification),
    (PRODUCTS_NAMED_OR_KEYED on a catalogue cache miss), INSERT_PRESCRIPTION_WITH_LINES (ON
    CONFLICT DO NOTHING: the unique indexes refuse a replay or a taken code), CLAIM_PAYLOAD,
    INSERT_ACCESS_LOG ('create'), COMPLETE_IDEMPOTENCY
    (the QR text stored with the row is signed with the national key: one ES256 signature)
"""

from __future__ import annotations

PHARMACY_BY_CODE = (
    "SELECT pharmacy.id, pharmacy.connection_code, pharmacy.name, pharmacy.kind, pharmacy.province_code, "
    "pharmacy.address, pharmacy.latitude, pharmacy.longitude, pharmacy.controlled_licence, pharmacy.status, "
    "pharmacy.credentials_version FROM pharmacy WHERE pharmacy.connection_code = $1::VARCHAR"
)
FACILITY_BY_CODE = (
    "SELECT facility.facility_code, facility.name, facility.province_code, facility.status, "
    "facility.credentials_version FROM facility WHERE facility.facility_code = $1::VARCHAR"
)
# The pharmacy's own quota of unknown codes (kit.throttle.lookup_subjects).
THROTTLE_VERDICT = (
    "SELECT throttle_counter.key, throttle_counter.expires_at, throttle_counter.failures "
    "FROM throttle_counter WHERE throttle_counter.key IN ($2::VARCHAR) "
    "AND throttle_counter.expires_at > $1::TIMESTAMP WITH TIME ZONE"
)
PRESCRIPTION_WITH_LINES = (
    "SELECT prescription.id, prescription.code, prescription.kind, prescription.status, "
    "prescription.facility_code, prescription.prescriber_id, prescription.prescriber_name, "
    "prescription.facility_name, prescription.issued_at, prescription.valid_until, prescription.replaces_code, "
    "prescription.replaced_by_code, prescription.patient_full_name, prescription.patient_date_of_birth, "
    "prescription.patient_gender, prescription.patient_national_id, prescription.patient_insurance_no, "
    "prescription.patient_weight_kg, prescription.patient_phone, prescription.patient_address, "
    "prescription.guardian, prescription.diagnoses, prescription.notes, prescription.follow_up_date, "
    "prescription.sensitive, prescription_item.line_no, prescription_item.active_ingredient, "
    "prescription_item.strength, prescription_item.dosage_form, prescription_item.registration_no, "
    "prescription_item.quantity, prescription_item.unit, prescription_item.instructions, "
    "prescription_item.days_supply, prescription_item.dispensed, prescription_item.remaining, "
    "prescription_item.ingredient_key, prescription_item.strength_key, prescription_item.form_key "
    "FROM prescription JOIN prescription_item ON prescription_item.prescription_code = prescription.code "
    "AND prescription_item.prescription_id = prescription.id "
    "WHERE prescription.code = $1::VARCHAR AND prescription_item.prescription_code = $1::VARCHAR "
    "ORDER BY prescription_item.line_no"
)
LOCK_PRESCRIPTION_WITH_LINES = PRESCRIPTION_WITH_LINES + " FOR UPDATE"
# The chained append of kit.audit in one statement: the content digest, the chain head's upsert
# and the entry (same parameters as a plain insert).
_ACCESS_DIGEST = (
    "encode(sha256(convert_to(concat_ws(chr(31), $2::VARCHAR, "
    "to_char($1::TIMESTAMP WITH TIME ZONE AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "$3::VARCHAR, $4::VARCHAR, $5::VARCHAR, coalesce($6::VARCHAR, '')), 'UTF8')), 'hex')"
)
INSERT_ACCESS_LOG = (
    f"WITH digest AS (SELECT {_ACCESS_DIGEST} AS d), "
    "head AS (INSERT INTO access_log_head (prescription_code, seq, prev_hash, entry_hash) "
    "SELECT $2::VARCHAR, 1, '', encode(sha256(convert_to(':1:' || d, 'UTF8')), 'hex') FROM digest "
    "ON CONFLICT (prescription_code) DO UPDATE SET seq = access_log_head.seq + 1, "
    "prev_hash = access_log_head.entry_hash, "
    "entry_hash = encode(sha256(convert_to(access_log_head.entry_hash || ':' || "
    "CAST(access_log_head.seq + 1 AS VARCHAR) || ':' || (SELECT d FROM digest), 'UTF8')), 'hex') "
    "RETURNING seq, prev_hash, entry_hash) "
    "INSERT INTO access_log (at, prescription_code, actor_kind, actor_code, action, client_address, "
    "seq, prev_hash, entry_hash) "
    "SELECT $1::TIMESTAMP WITH TIME ZONE, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR, "
    "head.seq, head.prev_hash, head.entry_hash FROM head "
    "RETURNING access_log.id"
)
DRUG_COLUMNS = (
    "drug.id, drug.registration_no, drug.name, drug.active_ingredient, drug.strength, drug.dosage_form, "
    "drug.unit, drug.packaging, drug.manufacturer, drug.country, drug.category, drug.declared_price, "
    "drug.ingredient_key, drug.strength_key, drug.form_key, drug.search_text, drug.created_at, drug.updated_at"
)
# Products named by registration number ($1) or sharing a line's (ingredient, strength, form).
PRODUCTS_NAMED_OR_KEYED = (
    f"SELECT {DRUG_COLUMNS} FROM drug WHERE drug.registration_no = ANY($1::VARCHAR[]) "
    "OR (drug.ingredient_key, drug.strength_key, drug.form_key) IN "
    "(SELECT * FROM unnest($2::VARCHAR[], $3::VARCHAR[], $4::VARCHAR[])) "
    "ORDER BY drug.declared_price NULLS LAST, drug.name"
)
CLAIM_IDEMPOTENCY = (
    "INSERT INTO idempotency_record (scope, key, request_hash, created_at) "
    "VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::TIMESTAMP WITH TIME ZONE) "
    "ON CONFLICT (scope, key) DO NOTHING RETURNING idempotency_record.id"
)
COMPLETE_IDEMPOTENCY = (
    "UPDATE idempotency_record SET status_code=$1::INTEGER, response_body=$2::VARCHAR "
    "WHERE idempotency_record.scope = $3::VARCHAR AND idempotency_record.id = $4::BIGINT"
)
# $1 settled status, $2 prescription id, $3/$4 line numbers and deltas, $5 how many lines move,
# $6 the prescription's code.
MOVE_QUANTITIES = (
    "WITH wanted AS (SELECT * FROM unnest($3::INTEGER[], $4::INTEGER[]) AS w (line_no, delta)), "
    "moved AS (UPDATE prescription_item SET dispensed = prescription_item.dispensed + wanted.delta, "
    "remaining = prescription_item.remaining - wanted.delta FROM wanted "
    "WHERE prescription_item.prescription_code = $6::VARCHAR AND prescription_item.prescription_id = $2::BIGINT "
    "AND prescription_item.line_no = wanted.line_no "
    "AND prescription_item.remaining >= wanted.delta AND prescription_item.dispensed >= -wanted.delta "
    "RETURNING prescription_item.line_no, prescription_item.dispensed, prescription_item.remaining), "
    "settled AS (UPDATE prescription SET status = $1::VARCHAR WHERE prescription.code = $6::VARCHAR "
    "AND prescription.id = $2::BIGINT "
    "AND prescription.status IN ('active', 'partially_dispensed', 'dispensed') "
    "AND (SELECT count(*) FROM moved) = $5::INTEGER RETURNING prescription.id) "
    "SELECT moved.line_no, moved.dispensed, moved.remaining FROM moved"
)
INSERT_DISPENSE_WITH_LINES = (
    "WITH created AS (INSERT INTO dispense (dispense_id, pharmacy_id, prescription_id, prescription_code, "
    "pharmacist_full_name, pharmacist_license_no, created_at) VALUES ($1::VARCHAR, $2::INTEGER, $3::BIGINT, "
    "$4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::TIMESTAMP WITH TIME ZONE) RETURNING dispense.id) "
    "INSERT INTO dispense_line (dispense_id, position, line_no, registration_no, quantity, unit_price, "
    "batch_no, expiry_date, prescription_code) SELECT created.id, given.* FROM created, unnest($8::INTEGER[], "
    "$9::INTEGER[], $10::VARCHAR[], $11::INTEGER[], $12::BIGINT[], $13::VARCHAR[], $14::DATE[], "
    "$15::VARCHAR[]) AS given "
    "RETURNING dispense_line.dispense_id"
)
SIGNER_AT = (
    "SELECT prescriber.prescriber_id, prescriber.full_name, prescriber.license_no, prescriber.public_jwk, "
    "prescriber.controlled_allowed, prescriber.status, EXISTS (SELECT prescriber_facility.prescriber_id "
    "FROM prescriber_facility WHERE prescriber_facility.prescriber_id = prescriber.prescriber_id "
    "AND prescriber_facility.facility_code = $1::VARCHAR) AS anon_1 "
    "FROM prescriber WHERE prescriber.prescriber_id = $2::VARCHAR"
)
INSERT_PRESCRIPTION_WITH_LINES = (
    "WITH created AS (INSERT INTO prescription (code, kind, status, facility_code, prescriber_id, "
    "prescriber_name, facility_name, issued_at, valid_until, replaces_code, patient_full_name, "
    "patient_date_of_birth, patient_gender, patient_national_id, patient_insurance_no, patient_weight_kg, "
    "patient_phone, patient_address, guardian, diagnoses, notes, follow_up_date, sensitive, jws, "
    "payload_digest, lines_digest, qr_text, created_at, patient_national_id_index, patient_insurance_no_index) "
    "VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, "
    "$4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::VARCHAR, $8::TIMESTAMP WITH TIME ZONE, "
    "$9::TIMESTAMP WITH TIME ZONE, $10::VARCHAR, $11::VARCHAR, $12::DATE, $13::VARCHAR, $14::VARCHAR, "
    "$15::VARCHAR, $16::FLOAT, $17::VARCHAR, $18::VARCHAR, $19::JSON, $20::JSON, $21::VARCHAR, $22::DATE, "
    "$23::BOOLEAN, $24::VARCHAR, $25::VARCHAR, $26::VARCHAR, $27::VARCHAR, $28::TIMESTAMP WITH TIME ZONE, "
    "$44::VARCHAR, $45::VARCHAR) "
    "ON CONFLICT DO NOTHING RETURNING prescription.id) "
    "INSERT INTO prescription_item (prescription_id, line_no, active_ingredient, strength, dosage_form, "
    "registration_no, quantity, unit, instructions, days_supply, dispensed, remaining, ingredient_key, "
    "strength_key, form_key, prescription_code) SELECT created.id, given.* FROM created, unnest($29::INTEGER[], "
    "$30::VARCHAR[], $31::VARCHAR[], $32::VARCHAR[], $33::VARCHAR[], $34::INTEGER[], $35::VARCHAR[], "
    "$36::VARCHAR[], $37::INTEGER[], $38::INTEGER[], $39::INTEGER[], $40::VARCHAR[], $41::VARCHAR[], "
    "$42::VARCHAR[], $43::VARCHAR[]) AS given RETURNING prescription_item.prescription_id"
)
# The signed payload's digest, unique on its own (on Citus another shard than the prescription).
CLAIM_PAYLOAD = (
    "INSERT INTO prescription_payload (payload_digest, prescription_code) VALUES ($1::VARCHAR, $2::VARCHAR) "
    "ON CONFLICT DO NOTHING RETURNING prescription_payload.payload_digest"
)
