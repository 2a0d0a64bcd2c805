"""Errors of the price portal and of price publication."""

from __future__ import annotations

from erx.errors import FieldErrors, InvalidContent, NotFound, summarize


class ProductNotFound(NotFound):
    problem = "product-not-found"

    def __init__(self, registration_no: str) -> None:
        super().__init__(f"No product with registration number {registration_no} is in the catalogue")


class OutletNotFound(NotFound):
    problem = "outlet-not-found"

    def __init__(self, outlet_id: int) -> None:
        super().__init__(f"No outlet {outlet_id} lists prices on the portal")


class PriceListRejected(InvalidContent):
    """A price list with at least one bad item; nothing of it was applied."""

    problem = "price-list-rejected"

    def __init__(self, errors: FieldErrors) -> None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{summarize(errors)}{more}; nothing was applied", errors=errors)
