"""HL7 FHIR R4B (4.3.0, wire-compatible with R4 for these resources) mapping of prescriptions."""
