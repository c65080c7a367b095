"""The app's services, built once by the factory and looked up by views.

Views never construct their own dependencies; they call `services()` and, for the
database, `db_session()` which gives one session per request, closed at teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore

EXTENSION = "ketenpoort"


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyStore
    #: Further domain services, registered by their packages' `init_app`.
    extra: dict[str, Any] = field(default_factory=dict)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found


def db_session() -> Session:
    """The request's session.

    Every API request writes at least its audit entry (reads are audited too), so the
    session takes SQLite's write lock at BEGIN: a read transaction that upgrades to a
    write halfway fails under concurrent writers in WAL mode.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        session = services().db.session(write=True)
        g.db_session = session
    return session


def close_request_session(_: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
