-- Distribute erx on Citus. Run once on the coordinator, after `erx db upgrade` (the schema at
-- 20261203_dispense_line_shard_key or later), with the citus extension created and the
-- coordinator in the metadata (`SELECT citus_set_coordinator_host('<coordinator>', 5432);`),
-- while no previous release (one without the shard keys) is running:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 --single-transaction -f deploy/citus.sql
--
-- The plan (README, "Operations and scaling"):
--   * the prescription data is distributed by prescription code, all in one co-location group:
--     prescription (code), prescription_item, dispense, dispense_line, access_log
--     (prescription_code). Every hot query names the code, so it runs on one shard, and a
--     lookup's or a dispense's statements all run on the shard of that code.
--   * prescription_payload (one row per accepted signed payload) by its digest, its own group:
--     the replay check is a single-shard primary-key probe and its uniqueness never spans shards.
--   * idempotency_record by scope (one client's door), its own group: (scope, key) is unique
--     within a shard. A keyed submission or dispense thus writes two or three shards (its code's,
--     its digest's, its scope's): Citus commits them together with two-phase commit.
--   * the registry, the catalogue (its search words too), throttle counters and web sessions
--     are reference tables, copied to every node: small, read on every request, written rarely.
--   * price_listing, price_history and their counts (price_count, price_drug_count) stay on the
--     coordinator (Citus local tables joined with the reference tables); the portal reads them
--     from the coordinator's replicas.
-- Citus needs the distribution column in every primary key, unique constraint and foreign key
-- between distributed tables; the statements below widen them by that column. None of the
-- widened keys loses a guarantee the design relies on: a code is still unique (it is the
-- distribution column), a payload is still accepted once (prescription_payload), dispense ids are
-- 128-bit random (uuid4) and only looked up with their pharmacy.

DO $$
BEGIN
    IF to_regproc('create_distributed_table') IS NULL THEN
        RAISE EXCEPTION 'the citus extension is not installed: CREATE EXTENSION citus first';
    END IF;
END
$$;

-- The previous release has stopped: every line carries its code, the rollout triggers go.
DROP TRIGGER IF EXISTS prescription_item_fill_code ON prescription_item;
DROP FUNCTION IF EXISTS erx_fill_prescription_item_code();
DROP TRIGGER IF EXISTS dispense_line_fill_code ON dispense_line;
DROP FUNCTION IF EXISTS erx_fill_dispense_line_code();

-- Foreign keys between tables about to be distributed come back below, with the code in them.
ALTER TABLE prescription_item DROP CONSTRAINT fk_prescription_item_prescription_id_prescription;
ALTER TABLE dispense DROP CONSTRAINT fk_dispense_prescription_id_prescription;
ALTER TABLE dispense_line DROP CONSTRAINT fk_dispense_line_dispense_id_dispense;

-- Keys widened by the distribution column.
ALTER TABLE prescription DROP CONSTRAINT pk_prescription;
ALTER TABLE prescription ADD CONSTRAINT pk_prescription PRIMARY KEY (code, id);
-- A payload is accepted once through prescription_payload (its own distribution column).
ALTER TABLE prescription DROP CONSTRAINT uq_prescription_payload_digest;
CREATE INDEX ix_prescription_payload_digest ON prescription (payload_digest);

ALTER TABLE prescription_item DROP CONSTRAINT pk_prescription_item;
ALTER TABLE prescription_item ADD CONSTRAINT pk_prescription_item PRIMARY KEY (prescription_code, id);
ALTER TABLE prescription_item DROP CONSTRAINT uq_prescription_item_prescription_id_line_no;
ALTER TABLE prescription_item ADD CONSTRAINT uq_prescription_item_prescription_id_line_no
    UNIQUE (prescription_code, prescription_id, line_no);

ALTER TABLE dispense DROP CONSTRAINT pk_dispense;
ALTER TABLE dispense ADD CONSTRAINT pk_dispense PRIMARY KEY (prescription_code, id);
ALTER TABLE dispense DROP CONSTRAINT uq_dispense_dispense_id;
ALTER TABLE dispense ADD CONSTRAINT uq_dispense_dispense_id UNIQUE (prescription_code, dispense_id);
-- The void and the receipt find a dispense by its public id and pharmacy (on every shard).
CREATE INDEX ix_dispense_dispense_id ON dispense (dispense_id);

ALTER TABLE dispense_line DROP CONSTRAINT pk_dispense_line;
ALTER TABLE dispense_line ADD CONSTRAINT pk_dispense_line PRIMARY KEY (prescription_code, id);
ALTER TABLE dispense_line DROP CONSTRAINT uq_dispense_line_dispense_id_position;
ALTER TABLE dispense_line ADD CONSTRAINT uq_dispense_line_dispense_id_position
    UNIQUE (prescription_code, dispense_id, position);

ALTER TABLE access_log DROP CONSTRAINT pk_access_log;
ALTER TABLE access_log ADD CONSTRAINT pk_access_log PRIMARY KEY (prescription_code, id);

ALTER TABLE idempotency_record DROP CONSTRAINT pk_idempotency_record;
ALTER TABLE idempotency_record ADD CONSTRAINT pk_idempotency_record PRIMARY KEY (scope, id);

-- Reference tables, referenced ones first.
SELECT create_reference_table('admin_client');
SELECT create_reference_table('facility');
SELECT create_reference_table('prescriber');
SELECT create_reference_table('prescriber_facility');
SELECT create_reference_table('prescriber_key');
SELECT create_reference_table('pharmacy');
SELECT create_reference_table('drug');
SELECT create_reference_table('drug_word');
SELECT create_reference_table('drug_word_key');
SELECT create_reference_table('throttle_counter');
SELECT create_reference_table('web_session');

-- The listed prices stay on the coordinator, joined with the reference tables.
SELECT citus_add_local_table_to_metadata('price_listing');
SELECT citus_add_local_table_to_metadata('price_history');
SELECT citus_add_local_table_to_metadata('price_count');
SELECT citus_add_local_table_to_metadata('price_drug_count');

-- The prescription data: one co-location group by code.
SELECT create_distributed_table('prescription', 'code', colocate_with => 'none');
SELECT create_distributed_table('prescription_item', 'prescription_code', colocate_with => 'prescription');
SELECT create_distributed_table('dispense', 'prescription_code', colocate_with => 'prescription');
SELECT create_distributed_table('dispense_line', 'prescription_code', colocate_with => 'prescription');
SELECT create_distributed_table('access_log', 'prescription_code', colocate_with => 'prescription');
-- Each chain's head lives on its prescription's shard: an append is one router statement.
SELECT create_distributed_table('access_log_head', 'prescription_code', colocate_with => 'prescription');

-- Groups of their own.
SELECT create_distributed_table('prescription_payload', 'payload_digest', colocate_with => 'none');
SELECT create_distributed_table('idempotency_record', 'scope', colocate_with => 'none');

-- Foreign keys inside the group, through the distribution column.
ALTER TABLE prescription_item ADD CONSTRAINT fk_prescription_item_prescription_id_prescription
    FOREIGN KEY (prescription_code, prescription_id) REFERENCES prescription (code, id);
ALTER TABLE dispense ADD CONSTRAINT fk_dispense_prescription_id_prescription
    FOREIGN KEY (prescription_code, prescription_id) REFERENCES prescription (code, id);
ALTER TABLE dispense_line ADD CONSTRAINT fk_dispense_line_dispense_id_dispense
    FOREIGN KEY (prescription_code, dispense_id) REFERENCES dispense (prescription_code, id);
