"""Every table of the system on one metadata (for Alembic and the schema checks)."""

from __future__ import annotations

from sqlalchemy import MetaData


def load_all_models() -> MetaData:
    # Imported for their side effect: each module registers its tables on the shared metadata.
    import pharmacy_gateway.dispensing.models
    import pharmacy_gateway.prices.models  # noqa: F401
    from kit.database import metadata

    return metadata
