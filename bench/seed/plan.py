"""What a seeding is: its plan (how much of everything), its version, and the registry it leaves
for the load (secrets, keys, codes)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

# 3: the access log is chained (kit.audit); 4: identity numbers encrypted (kit.pii);
# 5: every prescriber's key is in the key history (prescriber_key).
SEED_VERSION = 5
# Seeds a later version can reuse: migrations bring them up to date in place (version 4's key
# history is backfilled by the migration that adds it; only `erx audit verify --signatures`
# would tell, as its prescriptions predate their prescribers' registration there).
REUSABLE_VERSIONS = (4, SEED_VERSION)
DATABASE = "erx_bench"
BATCH = 10_000
# Prescriptions are issued up to this long before the seed runs; each prescriber's key is
# registered as current since then.
BACKDATED = timedelta(days=3)


@dataclass
class SeedPlan:
    prescriptions: int = 200_000
    price_rows: int = 1_000_000
    pharmacies: int = 2_500
    facilities: int = 400
    prescribers: int = 2_000
    seed: int = 20261124

    def matches(self, other: dict[str, Any]) -> bool:
        return all(other.get(k) == v for k, v in asdict(self).items())


@dataclass
class Registry:
    """What the load needs to know of the seeded world (secrets, keys, codes)."""

    secret: str
    signing_key: dict[str, str]
    facilities: list[str]
    prescribers: list[dict[str, Any]]
    pharmacies: list[str]
    hot_code: str
    hot_registration_no: str
    normal_lines: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Registry:
        return cls(**json.loads(path.read_text()))
