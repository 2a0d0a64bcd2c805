"""Building blocks of request bodies that every context validates the same way.

Every text a client sends passes one screen (`screen_text`): no NUL, no other control
character (tab and line breaks excepted), no bidirectional override, embedding or isolate (a
name the portal shows must read as it is stored), no lone surrogate (which no database can
store). Bodies get it through `Screened`/`Strict`, paths and query strings through
`kit.inputs.ScreenRequest`; integers and dates get ranges every engine can store.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# C0 controls except tab, LF, CR; DEL and the C1 controls; the bidirectional formatting
# characters (LRE RLE PDF LRO RLO, LRI RLI FSI PDI, ALM, LRM RLM); lone surrogates.
UNSAFE_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u061c\u200e\u200f\ud800-\udfff]"
)

# What a PostgreSQL BIGINT holds (SQLite's INTEGER holds the same); a 4-byte INTEGER column's.
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
# Dates a person or a batch can carry; also far from the ends of Python's and the engines' calendars.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def unsafe_reason(text: str) -> str | None:
    """Why a text is refused, or None when it may be stored and shown."""
    found = UNSAFE_TEXT.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "must not contain NUL"
    if "\ud800" <= char <= "\udfff":
        return "must not contain a lone surrogate"
    if char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u200e\u200f":
        return "must not contain bidirectional formatting characters"
    return "must not contain control characters"


def _screen(value: Any, path: tuple[str | int, ...]) -> None:
    if isinstance(value, str):
        reason = unsafe_reason(value)
        if reason is not None:
            where = ".".join(str(p) for p in path)
            raise ValueError(f"{where}: {reason}" if where else reason)
    elif isinstance(value, dict):
        for key, item in value.items():
            _screen(key, path)
            _screen(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _screen(item, (*path, index))


def screen_text(value: Any) -> Any:
    """Refuse unsafe text anywhere inside a value (strings, list items, dict keys and values).

    The ValueError names where (`patient.full_name: must not contain NUL`).
    """
    _screen(value, ())
    return value


class Screened(BaseModel):
    """A body whose every text, declared or extra, passes `screen_text` once validated.

    After validation, not before: a before-validator would turn strict JSON validation into
    Python validation (where `"2026-01-01"` is no date). Nested models screen themselves.
    """

    @model_validator(mode="after")
    def _screen_text(self) -> Any:
        values = {**self.__dict__, **(self.__pydantic_extra__ or {})}
        for name, value in values.items():
            if not isinstance(value, BaseModel):
                _screen(value, (name,))
        return self


class Strict(Screened):
    """A request body: unknown fields are refused, surrounding spaces trimmed, text screened."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _in_calendar(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return value


def _instant_in_calendar(value: datetime) -> datetime:
    _in_calendar(value.date())
    return value


NonEmpty = Annotated[str, Field(min_length=1, max_length=300)]
# A person's name as every table stores it (VARCHAR(200)).
PersonName = Annotated[str, Field(min_length=1, max_length=200)]
SafeDate = Annotated[date, AfterValidator(_in_calendar)]
SafeInstant = Annotated[AwareDatetime, AfterValidator(_instant_in_calendar)]
# A row id in a path or query: what the INTEGER id columns (outlets, products) hold.
RowId = Annotated[int, Field(ge=1, le=INT_MAX)]
# How far into a list a page starts.
PageOffset = Annotated[int, Field(ge=0, le=INT_MAX)]
