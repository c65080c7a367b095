"""`ketenpoort init`: database to head, keys created where missing. Safe to repeat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key
from gateway.logs import configure_logging
from gateway.migrate import upgrade_to_head


def initialise(settings: Settings) -> dict[str, Any]:
    configure_logging(settings.log_level, settings.log_format)
    master = load_master_key(settings.keys_dir, settings.master_key, create=True)
    keys = KeyStore(settings.keys_dir, master)
    created = keys.ensure_all()
    database = Database(settings.database_url)
    try:
        upgrade_to_head(database.engine)
        meldpunt_created = _ensure_meldpunt(database, keys)
        with database.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        database.dispose()
    return {
        "database": database.engine.url.render_as_string(hide_password=True),
        "migration": revision,
        "keysCreated": [f"{r.purpose.value}:{r.kid}" for r in created],
        "developmentMasterKey": master.development,
        "meldpuntUpdated": meldpunt_created,
    }


def _ensure_meldpunt(database: Database, keys: KeyStore) -> bool:
    """The meldpunt organisation, with the key store's meldpunt encryption key."""
    from gateway.actors import SYSTEM
    from gateway.keys import KeyPurpose
    from gateway.partners.registry import ensure_meldpunt

    record = keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
    assert record.public_jwk is not None
    with database.transaction() as session:
        return ensure_meldpunt(session, record.public_jwk, actor=SYSTEM)
