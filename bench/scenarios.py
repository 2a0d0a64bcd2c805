"""What each scenario sends: requests built before the clock starts, written to files wrk replays."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg

from bench import jose, project
from bench.loadgen import Request
from bench.seed import Registry

PHARMACIST = {"full_name": "DS. Nguyễn Bench", "license_no": "000000/BENCH-CCHND"}
# What citizens type: ingredients and brands, with and without diacritics.
QUERIES = [
    "paracetamol", "amoxicillin", "thuoc ho", "thuốc ho", "vitamin c", "omeprazol", "metformin", "panadol",
    "efferalgan", "bo phe", "siro", "ibuprofen", "cetirizin", "amlodipin", "losartan", "berberin", "omega 3",
    "canxi", "men vi sinh", "augmentin",
]  # fmt: skip
# One or two wrong letters (missing, extra, changed, swapped), in one word or in one word of several.
TYPOS = [
    "paracetmol", "amoxcilin", "omeprazl", "metfromin", "cetirizine", "ibuprofne", "panadl", "losatan",
    "panadl extra", "amoxicilin 500", "thuoc hp", "vitamim c", "bo phr", "men vi snh", "efferalgn 500",
    "siro ho prospn",
]  # fmt: skip
PROVINCES = ["01", "79", "48", "31", "92", "38", "40"]

# Scenario name -> (what it measures, the limit app runs it too).
SCENARIOS: dict[str, tuple[str, bool]] = {
    "submit": (
        "POST /api/v1/prescriptions: signed by the prescriber (ES256), rules, QR signed, stored",
        True,
    ),
    "lookup": ("GET /gateway/v1/prescriptions/{code}: typed code, over 20,000 prescriptions", True),
    "lookup-qr": ("the same by the scanned QR text (national ES256 signature verified)", True),
    "dispense": ("POST …/dispenses, 1 unit, each request on its own prescription", True),
    "dispense-hot": ("the same, every request on one prescription line (its row lock)", True),
    "search": ("GET /portal/api/v1/prices?q=…, ±province/kind, 3 sorts, pages", False),
    "search-typo": ("the same with a typo in one word of q (one or several words)", False),
    "search-browse": ("no q: province/kind/category filters, sorted, pages, exact total", False),
    "product": ("GET /portal/api/v1/drugs/{no}: statistics and alternatives", False),
    "mixed": ("national day: submit 12%, lookups 33%, dispense 15%, portal 40%", False),
}
# Shares of the mixed national-day traffic.
MIX = {
    "submit": 12,
    "lookup": 15,
    "lookup-qr": 18,
    "dispense": 15,
    "search": 22,
    "search-typo": 4,
    "search-browse": 4,
    "product": 10,
}
# Scenarios whose requests can be sent only once (signed payloads, dispensed units).
UNIQUE = {"submit", "dispense"}


@dataclass
class Tokens:
    """Bearer tokens in the order of the tokens file (1-based in requests)."""

    pharmacies: list[str]
    facilities: dict[str, str]

    def all(self) -> list[str]:
        return [*self.pharmacies, *self.facilities.values()]

    def pharmacy_index(self, i: int) -> int:
        return 1 + i % len(self.pharmacies)

    def facility_index(self, facility_code: str) -> int:
        return 1 + len(self.pharmacies) + list(self.facilities).index(facility_code)


@dataclass
class Pools:
    """Data drawn from the database before a run."""

    codes: list[tuple[str, str]]  # (code, qr_text)
    targets: list[tuple[str, int, str]]  # (code, line_no, registration_no), each used once
    registration_numbers: list[str]
    used_targets: int = 0

    def take_targets(self, n: int) -> list[tuple[str, int, str]]:
        start = self.used_targets
        self.used_targets += n
        taken = self.targets[start : start + n]
        if not taken:
            raise RuntimeError("no dispensable prescription line left; rerun with --reseed")
        return taken


async def draw_pools(conn: asyncpg.Connection, registry: Registry, targets: int, rng_seed: int) -> Pools:
    await conn.execute("SELECT setseed($1)", (rng_seed % 1000) / 1000)
    codes = [
        (r["code"], r["qr_text"])
        for r in await conn.fetch(
            "SELECT code, qr_text FROM prescription WHERE status IN ('active', 'partially_dispensed') "
            "AND valid_until > now() + interval '1 day' ORDER BY random() LIMIT 20000"
        )
    ]
    rows = await conn.fetch(
        """
        SELECT p.code, i.line_no, coalesce(i.registration_no, (
                 SELECT d.registration_no FROM drug d
                  WHERE d.ingredient_key = i.ingredient_key AND d.strength_key = i.strength_key
                    AND d.form_key = i.form_key ORDER BY d.registration_no LIMIT 1)) AS registration_no
          FROM prescription p
          JOIN prescription_item i ON i.prescription_id = p.id AND i.line_no = 1
         WHERE p.kind = 'c' AND p.status IN ('active', 'partially_dispensed')
           AND p.valid_until > now() + interval '1 day' AND i.remaining >= 1 AND p.code <> $1
         ORDER BY random() LIMIT $2
        """,
        registry.hot_code,
        targets,
    )
    # The hot line never runs dry: give it back its units when it gets low.
    await conn.execute(
        "UPDATE prescription_item SET dispensed = 0, remaining = quantity "
        "WHERE prescription_id = (SELECT id FROM prescription WHERE code = $1) AND remaining < 1000000",
        registry.hot_code,
    )
    await conn.execute(
        "UPDATE prescription SET status = 'active' WHERE code = $1 AND status = 'dispensed'",
        registry.hot_code,
    )
    numbers = [r["registration_no"] for r in await conn.fetch("SELECT registration_no FROM drug ORDER BY id")]
    return Pools(codes, [(r["code"], r["line_no"], r["registration_no"]) for r in rows], numbers)


@dataclass
class Builder:
    """Builds each scenario's requests; unique ones (signed payloads, dispenses) are never reused."""

    registry: Registry
    tokens: Tokens
    pools: Pools
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    # ---- core and gateway ----------------------------------------------------------------

    def submit(self, n: int) -> list[Request]:
        by_facility: dict[str, list[dict[str, Any]]] = {f: [] for f in self.tokens.facilities}
        for p in self.registry.prescribers:
            for f in p["facilities"]:
                if f in by_facility:
                    by_facility[f].append(p)
        signers = [(f, p, jose.load_private(p["jwk"])) for f, ps in by_facility.items() for p in ps[:4]]
        issued_at = datetime.now(UTC).replace(microsecond=0).astimezone().isoformat()
        lines = self.registry.normal_lines
        out = []
        for i in range(n):
            facility, prescriber, key = signers[i % len(signers)]
            items = []
            for line in self.rng.sample(lines, self.rng.choice([1, 2, 2, 3, 3, 4])):
                days = self.rng.choice([5, 7, 10, 14, 30])
                item = {
                    "active_ingredient": line["active_ingredient"],
                    "strength": line["strength"],
                    "dosage_form": line["dosage_form"],
                    "quantity": days * self.rng.choice([1, 2, 3]),
                    "unit": line["unit"],
                    "instructions": "Uống 1 viên x 2 lần/ngày sau ăn",
                    "days_supply": days,
                }
                if self.rng.random() < 0.5:
                    item["registration_no"] = line["registration_no"]
                items.append(item)
            payload = {
                "kind": "c",
                "facility_code": facility,
                "issued_at": issued_at,
                "patient": {
                    "full_name": "Trần Thị Bình",
                    "date_of_birth": f"{self.rng.randint(1940, 2010)}-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}",
                    "gender": self.rng.choice(["male", "female"]),
                    "national_id": f"001{self.rng.randint(0, 999_999_999):09d}",
                    "insurance_no": f"DN{self.rng.randint(0, 10**13 - 1):013d}",
                },
                "diagnoses": [{"icd10": "J02.9", "text": "Viêm họng cấp"}],
                "items": items,
                "notes": f"bench {i} {self.rng.getrandbits(48):012x}",
            }
            compact = jose.sign_compact(
                {"alg": "ES256", "kid": prescriber["id"]},
                json.dumps(payload, ensure_ascii=False).encode(),
                key,
            )
            body = json.dumps({"jws": compact})
            out.append(Request("POST", project.SUBMIT_PATH, self.tokens.facility_index(facility), True, body))
        return out

    def lookup(self, n: int, *, qr: bool = False) -> list[Request]:
        codes = self.pools.codes
        return [
            Request(
                "GET",
                project.LOOKUP_PATH.format(code=quote(codes[i % len(codes)][1 if qr else 0], safe="")),
                self.tokens.pharmacy_index(i),
            )
            for i in range(min(n, len(codes)))
        ]

    def dispense(self, n: int) -> list[Request]:
        return [
            Request(
                "POST",
                project.DISPENSE_PATH.format(code=code),
                self.tokens.pharmacy_index(i),
                True,
                self._dispense_body(line_no, number),
            )
            for i, (code, line_no, number) in enumerate(self.pools.take_targets(n))
        ]

    def dispense_hot(self, n: int) -> list[Request]:
        body = self._dispense_body(1, self.registry.hot_registration_no)
        path = project.DISPENSE_PATH.format(code=self.registry.hot_code)
        return [Request("POST", path, self.tokens.pharmacy_index(i), True, body) for i in range(min(n, 1000))]

    @staticmethod
    def _dispense_body(line_no: int, registration_no: str) -> str:
        return json.dumps(
            {
                "pharmacist": PHARMACIST,
                "items": [{"line_no": line_no, "registration_no": registration_no, "quantity": 1}],
            },
            ensure_ascii=False,
        )

    # ---- portal --------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Request:
        return Request("GET", path + ("?" + urlencode(params) if params else ""))

    def search(self, n: int) -> list[Request]:
        out = []
        for _ in range(min(n, 5000)):
            params: dict[str, Any] = {"q": self.rng.choice(QUERIES)}
            roll = self.rng.random()
            if roll < 0.35:
                params["province"] = self.rng.choice(PROVINCES)
            elif roll < 0.45:
                params["kind"] = self.rng.choice(["pharmacy", "drugstore"])
            sort = self.rng.random()
            if sort < 0.15:
                params["sort"] = "-price"
            elif sort < 0.3:
                params["sort"] = "updated"
            if self.rng.random() < 0.2:
                params["offset"] = self.rng.choice([20, 40, 100])
            out.append(self._get(project.PRICES_PATH, params))
        return out

    def search_typo(self, n: int) -> list[Request]:
        return [self._get(project.PRICES_PATH, {"q": self.rng.choice(TYPOS)}) for _ in range(min(n, 5000))]

    def search_browse(self, n: int) -> list[Request]:
        out = []
        for _ in range(min(n, 5000)):
            params: dict[str, Any] = {"sort": self.rng.choice(["price", "-price", "updated"])}
            if self.rng.random() < 0.6:
                params["province"] = self.rng.choice(PROVINCES)
            if self.rng.random() < 0.3:
                params["category"] = "supplement"
            if self.rng.random() < 0.2:
                params["kind"] = self.rng.choice(["pharmacy", "drugstore", "cabinet"])
            if self.rng.random() < 0.2:
                params["offset"] = self.rng.choice([20, 100, 1000])
            out.append(self._get(project.PRICES_PATH, params))
        return out

    def product(self, n: int) -> list[Request]:
        numbers = self.pools.registration_numbers
        return [
            self._get(project.PRODUCT_PATH.format(registration_no=quote(self.rng.choice(numbers), safe="")))
            for _ in range(min(n, 5000))
        ]

    def build(self, scenario: str, n: int) -> list[Request]:
        makers: dict[str, Callable[[int], list[Request]]] = {
            "submit": self.submit,
            "lookup": self.lookup,
            "lookup-qr": lambda k: self.lookup(k, qr=True),
            "dispense": self.dispense,
            "dispense-hot": self.dispense_hot,
            "search": self.search,
            "search-typo": self.search_typo,
            "search-browse": self.search_browse,
            "product": self.product,
            "mixed": self.mixed,
        }
        return makers[scenario](n)

    def mixed(self, n: int) -> list[Request]:
        """`n` requests in the national-day shares, shuffled; unique kinds get fresh ones."""
        total = sum(MIX.values())
        parts: dict[str, Iterator[Request]] = {}
        counts = {name: max(1, n * share // total) for name, share in MIX.items()}
        for name, count in counts.items():
            made = self.build(name, count)
            parts[name] = _cycle(made) if name not in UNIQUE else iter(made)
        order = [name for name, count in counts.items() for _ in range(count)]
        self.rng.shuffle(order)
        return [next(parts[name]) for name in order]


def _cycle(items: Sequence[Request]) -> Iterator[Request]:
    while True:
        yield from items
