"""Shape a raw JSON body into a dialect model, tolerating what HIS software really sends.

Tolerated: "" or null for an absent list or object, one object where a list is expected,
`dot_dung_thuoc` as a list holding one object, unknown fields (kept and reported as ignored).
Refused (as problems): an object or list where a scalar belongs, true/false anywhere, a list of
things that are not objects, more than one `dot_dung_thuoc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from eprescribe.national.problems import FORMAT, INVALID, Loc, Problems, from_validation_error
from eprescribe.national.schemas import DialectBody
from eprescribe.national.values import is_absent

Body = TypeVar("Body", bound=DialectBody)


@dataclass(frozen=True)
class Read(Generic[Body]):
    """A body shaped into its model, and the dotted names of the fields it ignored."""

    body: Body
    ignored: tuple[str, ...]


def read(model: type[Body], raw: Any, problems: Problems) -> Read[Body]:
    """Shape `raw` into `model`; structural problems are recorded, never raised."""
    ignored: list[str] = []
    shaped = _shape(model, raw, (), problems, ignored) if isinstance(raw, dict) else None
    if shaped is None:
        if not isinstance(raw, dict):
            problems.add((), "nội dung gửi lên phải là một đối tượng JSON", FORMAT)
        shaped = {}
    try:
        body = model.model_validate(shaped)
    except ValidationError as exc:  # pragma: no cover - _shape leaves nothing for pydantic to refuse
        problems.items.extend(from_validation_error(exc))
        body = model.model_validate({})
    return Read(body, tuple(ignored))


def _shape(
    model: type[DialectBody], raw: dict[str, Any], loc: Loc, problems: Problems, ignored: list[str]
) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    for key, value in raw.items():
        here = (*loc, key)
        if key in model.list_fields:
            shaped[key] = _shape_list(model.list_fields[key], value, here, problems, ignored)
        elif key in model.object_fields:
            shaped[key] = _shape_object(model.object_fields[key], value, here, problems, ignored)
        elif key in model.model_fields:
            shaped[key] = _scalar(value, here, problems)
        else:
            ignored.append(".".join(str(part) for part in here))
    return shaped


def _scalar(value: Any, loc: Loc, problems: Problems) -> Any:
    if isinstance(value, bool):
        problems.add(loc, "không được là true/false; hãy gửi chuỗi ký tự hoặc số", FORMAT)
        return None
    if isinstance(value, dict | list):
        problems.add(
            loc, "phải là một giá trị đơn (chuỗi ký tự hoặc số), không phải danh sách hay đối tượng", FORMAT
        )
        return None
    return value


def _shape_list(
    model: type[DialectBody], value: Any, loc: Loc, problems: Problems, ignored: list[str]
) -> list[dict[str, Any]]:
    if is_absent(value):
        return []
    if isinstance(value, dict):
        value = [value]  # one object where a list is expected
    if not isinstance(value, list):
        problems.add(loc, "phải là một danh sách các đối tượng", FORMAT)
        return []
    shaped: list[dict[str, Any]] = []
    for index, element in enumerate(value):
        if isinstance(element, dict):
            shaped.append(_shape(model, element, (*loc, index), problems, ignored))
        else:
            problems.add((*loc, index), "mỗi phần tử phải là một đối tượng JSON", FORMAT)
    return shaped


def _shape_object(
    model: type[DialectBody], value: Any, loc: Loc, problems: Problems, ignored: list[str]
) -> dict[str, Any] | None:
    if is_absent(value):
        return None
    if isinstance(value, list):
        if not value:
            return None
        if len(value) > 1:
            problems.add(loc, "chỉ được gửi một đợt dùng thuốc cho mỗi đơn", INVALID)
            return None
        value = value[0]
        loc = (*loc, 0)
    if not isinstance(value, dict):
        problems.add(loc, "phải là một đối tượng JSON", FORMAT)
        return None
    return _shape(model, value, loc, problems, ignored)
