"""Pure mappings between the contract and other dialects: QĐ 808 and HL7 FHIR R4B.

No database, no routes, no service calls: functions and pydantic models the services wire in.
"""
