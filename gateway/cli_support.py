"""What every `ketenpoort` command shares: settings, the admin database, JSON output.

The command modules of the domain packages (`gateway.audit.cli`, `gateway.partners.cli`,
`gateway.policy.cli`) import this module, never `gateway.cli`: the top-level command
imports them to register them, so the dependency runs one way. Errors are raised as
`gateway.errors.OperatorError` and printed once by the top-level command.

Every command module imports only click and light modules at the top and the rest inside
its command functions: `ketenpoort --version`, `--help` and `partner …` must start at once
(`tests/test_cli_startup.py` keeps SQLAlchemy, Flask and the cryptography out of them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.errors import NotInitialised, OperatorError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.db import Database

NOT_INITIALISED = "the database is not initialised; run `ketenpoort init`"


def settings_from_env() -> Settings:
    """The settings, or `ConfigError` (an `OperatorError`) naming the variable.

    Also routes the command's log lines through the gateway's redacting pipeline to
    stderr, at the configured level and format: stdout holds the command's result only
    (a `--json` result stays parseable), and nothing logs unredacted.
    """
    from gateway.config import load_settings
    from gateway.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def admin_database(settings: Settings) -> Database:
    """The database of an initialised instance, for an administration command.

    Creates nothing: a SQLite file that does not exist, or a database without the
    migration table, is `NotInitialised` ("run `ketenpoort init`").
    """
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.db import Database

    url = make_url(settings.database_url)
    path = url.database if url.get_backend_name() == "sqlite" else None
    on_disk = bool(path) and path != ":memory:" and not str(path).startswith("file:")
    if on_disk and not Path(str(path)).is_file():
        raise NotInitialised(NOT_INITIALISED)
    database = Database(settings.database_url)
    try:
        initialised = inspect(database.engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        database.dispose()
        raise OperatorError(f"the database cannot be reached: {_cause(exc)}") from None
    if not initialised:
        database.dispose()
        raise NotInitialised(NOT_INITIALISED)
    return database


def _cause(exc: Exception) -> str:
    """The driver's own first line (e.g. `database "x" does not exist`, `Connection
    refused`): never the URL, so no password; the exception's name when there is none."""
    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) else None
    text = " ".join(str(orig or "").split("\n")[0].split())
    if _names_no_url(text):
        return text[:300]
    return type(exc).__name__


def _names_no_url(text: str) -> bool:
    """Non-empty and names no URL (a driver that echoes its connection string)."""
    return bool(text) and "://" not in text


def emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    """Print `data` as JSON with `--json`, else the human line."""
    if as_json:
        print_json(data)
    else:
        click.echo(human)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
