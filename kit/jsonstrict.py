"""Strict JSON: parse refusing duplicate keys and broken text, compare and hash as JSON."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any


class StrictJsonError(ValueError):
    """JSON that a strict reader refuses (duplicate keys, NaN, non-UTF-8 text)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            # Two readers could each pick a different duplicate: refuse rather than guess.
            raise StrictJsonError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not JSON")


def _check_text(value: Any) -> None:
    """Refuse lone surrogates (`\\ud800`), which no UTF-8 text can carry."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise StrictJsonError("a string is not valid Unicode text") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def parse_strict(data: bytes | str) -> Any:
    """Parse UTF-8 JSON, refusing duplicate keys, NaN/Infinity and invalid text."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except UnicodeDecodeError as exc:
        raise StrictJsonError("not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise StrictJsonError("nested too deeply") from exc
    try:
        _check_text(value)
    except RecursionError as exc:
        raise StrictJsonError("nested too deeply") from exc
    return value


def same_json(left: Any, right: Any) -> bool:
    """Compare as JSON: key order is irrelevant, `true` is not `1`, `"1"` is not `1`, `1.0` is `1`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same_json(a, b) for a, b in zip(left, right, strict=True))
    return False


def _normal(value: Any) -> Any:
    # One JSON number has one writing: 10.0 and 10 are the same number (as in RFC 8785).
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """Serialise with sorted keys and no spaces, as UTF-8: equal JSON gives equal bytes."""
    return json.dumps(
        _normal(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode()


def checksum(value: Any) -> str:
    """Return the SHA-256 (hex) of the canonical serialisation."""
    return hashlib.sha256(canonical(value)).hexdigest()
