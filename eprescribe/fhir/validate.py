"""Structural validation with fhir.resources (R4B models), and OperationOutcome for problems.

fhir.resources checks types, cardinality and required elements; it does not check value-set
bindings or FHIRPath invariants, so the mappings check the codes they rely on themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from eprescribe.national.problems import FORMAT, REQUIRED, UNKNOWN, Problem

_ISSUE_CODES = {REQUIRED: "required", UNKNOWN: "not-found", FORMAT: "structure"}


def validate_bundle(data: Mapping[str, Any]) -> Bundle:
    """Parse a Bundle as FHIR R4B; raise pydantic's ValidationError when it is not one."""
    return Bundle.model_validate(dict(data))


def structural_problems(exc: ValidationError) -> list[Problem]:
    """Translate fhir.resources' errors into problems located by FHIRPath."""
    return [
        Problem(("Bundle", *error["loc"]), f"không đúng cấu trúc FHIR R4: {error['msg']}", FORMAT)
        for error in exc.errors()
    ]


def operation_outcome(problems: Iterable[Problem]) -> dict[str, Any]:
    """Render problems as a FHIR OperationOutcome, one issue each."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": _ISSUE_CODES.get(problem.code, "invalid"),
                "diagnostics": problem.message,
                "expression": [problem.fhirpath()],
            }
            for problem in problems
        ],
    }
