"""The limit: the system's lookup, dispense and submit as bare Starlette + asyncpg, no ORM.

Each route runs the very statements of `bench.minimal.sql`, in the same order and in one
transaction, and answers a body of the same shape; the server flags are the system's. What it
leaves out is what a framework, an ORM and validation layers add, so `system / limit` is the share
of the achievable throughput the system reaches on this machine. Liberties, all on the CPU side:
the bearer token's claims are read without checking its signature (the brief counts one ES256
verification for submit, the prescriber's), and the payload is checked only for what the SQL
needs. Configured by DATABASE_URL and ERX_SIGNING_KEY (the national key that signs QR texts).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from bench import project
from bench.minimal.common import lifespan, readyz
from bench.minimal.facility import submit
from bench.minimal.pharmacy import dispense, lookup

app = Starlette(
    routes=[
        Route(project.READY_PATH, readyz),
        Route(project.SUBMIT_PATH, submit, methods=["POST"]),
        Route(project.LOOKUP_PATH, lookup),
        Route(project.DISPENSE_PATH, dispense, methods=["POST"]),
    ],
    lifespan=lifespan,
)
