-- Distribute the prescription data by prescription code on Citus (run after `erx db upgrade`).
-- Small, read-mostly tables are copied to every worker.
SELECT create_reference_table('facility');
SELECT create_reference_table('prescriber');
SELECT create_reference_table('prescriber_facility');
SELECT create_reference_table('pharmacy');
SELECT create_reference_table('drug');
SELECT create_reference_table('admin_client');

-- prescription_item carries the parent's id; in a Citus deployment it also carries the code so
-- that lines co-locate with their prescription (a migration adds `prescription_code` to the
-- child tables and makes it part of their primary keys before distribution).
SELECT create_distributed_table('prescription', 'code');
SELECT create_distributed_table('access_log', 'prescription_code', colocate_with => 'prescription');
