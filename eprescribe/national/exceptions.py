"""Refusals of the national-protocol doors, already written in the dialect's shape."""

from __future__ import annotations

from typing import Any

from kit.errors import DomainError


class DialectRefused(DomainError):
    """A refusal answered as the national protocol does: `{"success": message, "danh_sach_cac_loi"}`."""

    problem = "national-protocol-refused"
    title = "Refused (national protocol)"

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        *,
        problem: str = "national-protocol-refused",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(body.get("success", "")), headers=headers)
        self.status_code = status
        self.answer = body
        self.problem = problem
