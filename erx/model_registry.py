"""Import every table module so the metadata is complete (for Alembic and tooling)."""

from __future__ import annotations

from sqlalchemy import MetaData


def load_all_models() -> MetaData:
    # Imported for their side effect: each module registers its tables on the shared metadata.
    import eprescribe.models  # noqa: F401
    import erx.audit  # noqa: F401
    import erx.idempotency  # noqa: F401
    from erx.database import metadata

    return metadata
