"""Import every table module so the metadata is complete (for Alembic and tooling)."""

from __future__ import annotations

from sqlalchemy import MetaData


def load_all_models() -> MetaData:
    # Imported for their side effect: each module registers its tables on the shared metadata.
    import eprescribe.models  # noqa: F401
    import erx.audit
    import erx.idempotency
    import erx.throttle
    import erx.web_session  # noqa: F401
    import pharmacy_gateway.models  # noqa: F401
    import price_portal.models  # noqa: F401
    from erx.database import metadata

    return metadata
