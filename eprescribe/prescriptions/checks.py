"""The policy table applied to a signed payload: every broken rule becomes a field error."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import DrugCategory, Product, ProductKey
from eprescribe.prescriptions.policy import (
    POLICY,
    age_in_months,
    chronic_conditions,
    is_cancer_or_aids,
    supply_limit,
)
from eprescribe.prescriptions.schemas import PrescribedItem, PrescriptionPayload
from eprescribe.registry.exceptions import PrescriberNotAllowed
from eprescribe.registry.schemas import PrescriberRecord
from kit.errors import FieldErrors, InvalidContent, field_error

PAYLOAD = "payload"


def _check_prescriber(payload: PrescriptionPayload, prescriber: PrescriberRecord) -> None:
    if payload.kind in POLICY.controlled_kinds and not prescriber.controlled_allowed:
        raise PrescriberNotAllowed(
            "This prescriber is not authorised to prescribe narcotic or psychotropic drugs",
            errors=[
                field_error(
                    [PAYLOAD, "kind"],
                    "controlled kind not allowed for this prescriber",
                    "controlled_not_allowed",
                )
            ],
        )


def _patient_errors(payload: PrescriptionPayload) -> FieldErrors:
    """Age, guardian and weight of children, identity for narcotics, a follow-up after the visit."""
    errors: FieldErrors = []
    issued_on = payload.issued_at.date()
    patient = payload.patient
    loc = [PAYLOAD, "patient"]
    if patient.date_of_birth > issued_on:
        errors.append(field_error([*loc, "date_of_birth"], "is after the issue date", "birth_after_issue"))
    elif age_in_months(patient.date_of_birth, issued_on) < POLICY.guardian_required_under_months:
        if patient.guardian is None:
            errors.append(
                field_error(
                    [*loc, "guardian"],
                    "a child under 72 months needs a guardian",
                    "guardian_required",
                    months=POLICY.guardian_required_under_months,
                )
            )
        if patient.weight_kg is None:
            errors.append(
                field_error(
                    [*loc, "weight_kg"],
                    "a child under 72 months needs the weight",
                    "weight_required",
                    months=POLICY.guardian_required_under_months,
                )
            )
    if payload.kind in POLICY.national_id_required_kinds and not patient.national_id:
        errors.append(
            field_error(
                [*loc, "national_id"],
                "a narcotic prescription needs the patient's national ID",
                "national_id_required",
            )
        )
    if payload.follow_up_date is not None and payload.follow_up_date < issued_on:
        errors.append(
            field_error([PAYLOAD, "follow_up_date"], "is before the issue date", "follow_up_before_issue")
        )
    return errors


def _category_error(loc: list[str | int], kind: str, categories: set[str]) -> dict[str, object] | None:
    if DrugCategory.SUPPLEMENT in categories and not (categories - {DrugCategory.SUPPLEMENT}):
        return field_error(
            [*loc, "active_ingredient"],
            "health supplements are never prescribed",
            "supplement_never_prescribed",
        )
    if not categories & POLICY.kind_categories[kind]:
        return field_error(
            [*loc, "active_ingredient"],
            f"a {'/'.join(sorted(categories))} drug does not belong on a prescription of kind '{kind}'"
            " (one kind per prescription: split the visit)",
            "category_not_of_kind",
            kind=kind,
            categories=sorted(categories),
        )
    return None


def _line_errors(
    index: int,
    item: PrescribedItem,
    kind: str,
    registered: Mapping[str, Product],
    categories_by_key: Mapping[ProductKey, set[str]],
) -> FieldErrors:
    """The product a line names must exist with the same ingredient, strength and form, and fit the kind."""
    loc: list[str | int] = [PAYLOAD, "items", index]
    key = catalogue.product_key(item.active_ingredient, item.strength, item.dosage_form)
    if item.registration_no:
        product = registered.get(item.registration_no)
        if product is None:
            return [
                field_error(
                    [*loc, "registration_no"], "no such product in the national catalogue", "not_in_catalogue"
                )
            ]
        if product.key != key:
            return [
                field_error(
                    [*loc, "registration_no"],
                    "the product's active ingredient, strength or dosage form differs from the line",
                    "product_differs_from_line",
                )
            ]
        categories = {product.category}
    else:
        categories = categories_by_key.get(key, set())
        if not categories:
            return [
                field_error(
                    [*loc, "active_ingredient"],
                    "no registered product has this active ingredient, strength and dosage form",
                    "no_product_for_line",
                )
            ]
    problem = _category_error(loc, kind, categories)
    return [problem] if problem else []


async def check_policy(
    session: AsyncSession, payload: PrescriptionPayload, prescriber: PrescriberRecord
) -> None:
    """Apply every rule of the policy table; collect all field errors, then refuse at once."""
    _check_prescriber(payload, prescriber)
    errors = _patient_errors(payload)
    chronic = chronic_conditions()
    limit = supply_limit(
        payload.kind,
        chronic=any(chronic.covers(d.icd10) for d in payload.diagnoses),
        cancer_or_aids=any(is_cancer_or_aids(d.icd10) for d in payload.diagnoses),
    )
    registered, categories_by_key = await catalogue.for_prescribed_lines(
        session,
        [i.registration_no for i in payload.items if i.registration_no],
        [
            catalogue.product_key(i.active_ingredient, i.strength, i.dosage_form)
            for i in payload.items
            if not i.registration_no
        ],
    )
    for index, item in enumerate(payload.items):
        if item.days_supply > limit.days:
            errors.append(
                field_error(
                    [PAYLOAD, "items", index, "days_supply"],
                    limit.why,
                    "days_supply_over_limit",
                    days=limit.days,
                    rule=limit.rule,
                )
            )
        errors.extend(_line_errors(index, item, payload.kind, registered, categories_by_key))
    if errors:
        raise InvalidContent.from_errors(errors)
