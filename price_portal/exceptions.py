"""Errors of the public price portal."""

from __future__ import annotations

from kit.errors import NotFound


class ProductNotFound(NotFound):
    problem = "product-not-found"

    def __init__(self, registration_no: str) -> None:
        super().__init__(f"No product with registration number {registration_no} is in the catalogue")


class OutletNotFound(NotFound):
    problem = "outlet-not-found"

    def __init__(self, outlet_id: int) -> None:
        super().__init__(f"No outlet {outlet_id} lists prices on the portal")
