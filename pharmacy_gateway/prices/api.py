"""Price publication by pharmacies (`PUT /gateway/v1/prices`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kit.errors import PROBLEM
from kit.inputs import JsonBody
from kit.time import vn_time
from pharmacy_gateway.deps import PharmacyCallDep
from pharmacy_gateway.prices import service
from pharmacy_gateway.prices.schemas import PriceListIn, PublishResult

router = APIRouter()


def _inline_schema() -> dict[str, Any]:
    """PriceListIn's JSON schema with the item schema written in place (no dangling $ref)."""
    schema = PriceListIn.model_json_schema()
    definitions = schema.pop("$defs", {})
    schema["properties"]["items"]["items"] = definitions["PriceItemIn"]
    return schema


@router.put(
    "/gateway/v1/prices",
    response_model=PublishResult,
    tags=["pharmacy gateway"],
    responses={400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 422: PROBLEM},
    # The body is validated item by item in the service (one error per bad item, all at
    # once), so the schema is documented here rather than enforced by FastAPI.
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _inline_schema()}}}
    },
)
async def publish_prices(body: JsonBody, call: PharmacyCallDep) -> PublishResult:
    """Replace this pharmacy's listed price of each product (up to 5,000) and keep the history.

    Each item is checked against the catalogue: an unknown product, a price that is not a
    positive whole number of dong, or a unit other than the product's refuses the whole list
    with one error per item, and nothing is applied.
    """
    report = await service.publish_prices(call.session, call.pharmacy, service.parse_price_list(body))
    return PublishResult(
        accepted=report.accepted,
        created=report.created,
        changed=report.changed,
        unchanged=report.unchanged,
        updated_at=vn_time(report.at),
    )
