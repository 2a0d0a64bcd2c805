"""Import every table module so the metadata is complete (for Alembic and tooling)."""

from __future__ import annotations

from sqlalchemy import MetaData


def load_all_models() -> MetaData:
    import erx.audit
    import erx.idempotency  # noqa: F401
    import price_portal.models  # noqa: F401
    from erx.database import metadata

    return metadata
