"""The `ketenpoort` command line.

Errors go to stderr as one line and exit non-zero; results print as JSON with `--json`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway import API_VERSION, __version__
from gateway.config import ConfigError, Settings, load_settings
from gateway.keys import KeyStoreError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure the operator can act on; printed as `error: …` with exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly_errors(command: F) -> F:
    """Turn known failures into one clear line instead of a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ConfigError, KeyStoreError) as exc:
            raise CliError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(human)


def settings_from_env() -> Settings:
    return load_settings()


@click.group()
@click.version_option(__version__, prog_name="ketenpoort")
def main() -> None:
    """Ketenpoort: the privacy-first data-sharing gateway for chain partners."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def init(as_json: bool) -> None:
    """Create or upgrade the database and create missing keys (idempotent)."""
    from gateway.bootstrap import initialise

    settings = settings_from_env()
    result = initialise(settings)
    from gateway.audit.cli import record_init

    record_init(settings, result)
    created = result["keysCreated"]
    emit(
        result,
        as_json,
        f"database at {result['database']} is at migration {result['migration']}; "
        + (f"created keys: {', '.join(created)}" if created else "all keys present"),
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@friendly_errors
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the gateway with gunicorn (a production server)."""
    from gateway.server import PortInUse, run_gunicorn

    settings = settings_from_env()
    try:
        run_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)
    except PortInUse as exc:
        raise CliError(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dir",
    "directory",
    default="var/demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--no-serve", is_flag=True, help="Stop after the summary instead of serving.")
@friendly_errors
def demo(host: str, port: int, directory: Path, no_serve: bool) -> None:
    """A complete demo instance on SQLite with partners and signals, then serve it."""
    from gateway.demo.run import DemoError, run_demo

    try:
        run_demo(directory, host, port, serve=not no_serve)
    except DemoError as exc:
        raise CliError(str(exc)) from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def version(as_json: bool) -> None:
    """Print the software and API versions."""
    emit(
        {"version": __version__, "apiVersion": API_VERSION},
        as_json,
        f"ketenpoort {__version__} (API {API_VERSION})",
    )


from gateway.partners.cli import clients, partners  # noqa: E402 - after `main`

main.add_command(partners)
main.add_command(clients)

from gateway.policy.cli import policy as _policy  # noqa: E402 - after `main`

main.add_command(_policy)


@main.group()
def signals() -> None:
    """Signals: retention."""


@signals.command("expire")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def signals_expire(as_json: bool) -> None:
    """Expire every signal past its retention now (the gateway also does this each minute)."""
    from gateway.db import Database
    from gateway.policy.engine import PolicyEngine
    from gateway.policy.loader import load_policy
    from gateway.signals.expiry import expire_signals

    settings = settings_from_env()
    database = Database(settings.database_url)
    try:
        expired = expire_signals(database, PolicyEngine(load_policy(settings.policy)))
    finally:
        database.dispose()
    emit({"expired": expired}, as_json, f"{expired} signal(s) expired")


@main.group()
def users() -> None:
    """People at the meldpunt (for the web UI)."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help="coordinator, privacy-officer or admin")
@friendly_errors
def users_add(name: str, role: str) -> None:
    """Create a user; prints JSON with the one-time password and the TOTP secret."""
    from gateway.actors import cli_actor
    from gateway.db import Database
    from gateway.keys import KeyStore, load_master_key
    from gateway.users.service import UserError, add_user

    settings = settings_from_env()
    keys = KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            created = add_user(session, keys, name=name, role=role, actor=cli_actor())
    except UserError as exc:
        raise CliError(str(exc)) from None
    finally:
        database.dispose()
    click.echo(json.dumps(created.as_json(), indent=2))


from gateway.client.cli import partner as _partner  # noqa: E402 - after `main`

main.add_command(_partner)

from gateway.audit.cli import audit as _audit  # noqa: E402 - after `main`

main.add_command(_audit)


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(main())
