"""HL7 FHIR R4 of the gateway: each dispense as MedicationDispense resources."""
