"""Realistic volume, seeded once with PostgreSQL COPY and reused between runs.

Rows are generated here, not through the project's services: the column lists come from the
database itself (information_schema), so a model refactoring that keeps the schema keeps the seed
working, and a schema change fails loudly (a required column the seed does not fill).

What is seeded (defaults): the catalogue (eprescribe/data/drugs.csv), 400 facilities, 2,000
prescribers with their own EC P-256 keys, 2,500 pharmacies, 1,000,000 price listings with their
history, and 200,000 signed prescriptions (1-5 lines, mostly kind `c`) with a valid national QR
signature and a `create` entry in the access log. A marker table (`bench_seed`) says the
database is complete; `var/bench/registry.json` keeps the secrets and private keys the load needs.

Stages, in the order their random choices are drawn (one `random.Random` of the plan's seed, so a
plan seeds the same world): `clients` (catalogue, facilities, prescribers, pharmacies), `prices`
(listings and history), `prescriptions` (signed, sealed, chained); `database` reuses or seeds the
database and `world` holds the invented country they draw from.
"""

from bench.seed.database import ensure, seed
from bench.seed.plan import DATABASE, Registry, SeedPlan

__all__ = ["DATABASE", "Registry", "SeedPlan", "ensure", "seed"]
