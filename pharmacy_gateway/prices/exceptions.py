"""Errors of price publication."""

from __future__ import annotations

from kit.errors import FieldErrors, InvalidContent, summarize


class PriceListRejected(InvalidContent):
    """A price list with at least one bad item; nothing of it was applied."""

    problem = "price-list-rejected"

    def __init__(self, errors: FieldErrors) -> None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{summarize(errors)}{more}; nothing was applied", errors=errors)
