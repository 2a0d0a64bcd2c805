"""Problems found while mapping a body: every one is collected, then all are refused at once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

Loc = tuple[str | int, ...]

# Stable machine codes beside the Vietnamese message, so programs need not parse prose.
REQUIRED = "bat_buoc"
FORMAT = "sai_dinh_dang"
INVALID = "khong_hop_le"
TOO_LONG = "qua_dai"
UNKNOWN = "khong_ton_tai"
MISMATCH = "khong_khop"


@dataclass(frozen=True)
class Problem:
    """One offending field: where it is, a Vietnamese message and a machine code."""

    loc: Loc
    message: str
    code: str = INVALID

    @property
    def field(self) -> str:
        """Render the location the Laravel way the national system uses: `a.0.b`."""
        return ".".join(str(part) for part in self.loc)

    def fhirpath(self) -> str:
        """Render the location as a FHIRPath-like expression: `Bundle.entry[0].resource`."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def entry(self) -> dict[str, str]:
        """Return the `danh_sach_cac_loi` entry of this problem."""
        return {"truong": self.field, "ma_loi": self.code, "thong_bao": self.message}


@dataclass
class Problems:
    """A collector that lets a parser go on after the first problem."""

    items: list[Problem] = field(default_factory=list)

    def add(self, loc: Loc, message: str, code: str = INVALID) -> None:
        """Record one problem."""
        self.items.append(Problem(tuple(loc), message, code))

    def has(self, prefix: Loc) -> bool:
        """Tell whether a problem was already recorded at or below `prefix`."""
        return any(problem.loc[: len(prefix)] == tuple(prefix) for problem in self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        """Refuse with every problem collected so far."""
        if self.items:
            raise MappingError(self.items)


class MappingError(ValueError):
    """A body that cannot be mapped; `problems` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


# Vietnamese for the pydantic error types the small strict models (login bodies) can raise.
_PYDANTIC_MESSAGES = {
    "missing": ("bắt buộc, không được thiếu", REQUIRED),
    "string_type": ("phải là chuỗi ký tự", FORMAT),
    "string_too_short": ("không được để trống", REQUIRED),
    "too_short": ("không được để trống", REQUIRED),  # what SecretStr reports
    "too_long": ("dài quá mức cho phép", TOO_LONG),
    "string_too_long": ("dài quá mức cho phép", TOO_LONG),
    "model_type": ("phải là một đối tượng JSON", FORMAT),
    "dict_type": ("phải là một đối tượng JSON", FORMAT),
}


def from_validation_error(exc: ValidationError, prefix: Loc = ()) -> list[Problem]:
    """Translate a pydantic error into Vietnamese problems, one per offending field."""
    found: list[Problem] = []
    for error in exc.errors():
        message, code = _PYDANTIC_MESSAGES.get(error["type"], ("giá trị không hợp lệ", INVALID))
        found.append(Problem((*prefix, *error["loc"]), message, code))
    return found
