"""Errors of the pharmacy gateway."""

from __future__ import annotations

from kit.errors import Conflict, Forbidden, NotFound


class DispenseNotFound(NotFound):
    problem = "dispense-not-found"

    def __init__(self, dispense_id: str) -> None:
        super().__init__(f"No dispense {dispense_id} of this pharmacy")


class ControlledLicenceRequired(Forbidden):
    problem = "controlled-licence-required"


class VoidRefused(Conflict):
    problem = "void-refused"
