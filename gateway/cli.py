"""The `ketenpoort` command line.

Results print as JSON with `--json`. Every failure an operator can act on is a
`gateway.errors.OperatorError`, caught once here and printed as one line,
`error: <message>`, on stderr; click's usage errors take the same form. Exit codes:

- 0: done;
- 1: an operator error (a setting, a key, an argument, a registration), or a check that
  found a problem (`audit verify`, `policy check`, `policy test`, `partner check`);
- 2: a usage error (an unknown command or option, a missing argument);
- 3: the database is not initialised — run `ketenpoort init` (nothing was created).

Building the command tree imports click only: the domain packages' command groups load
when they run or `--help` lists them (`_Commands.LAZY`), and each command imports what
it needs when it runs, so `--version`, `--help` and `partner …` start at once
(`tests/test_cli_startup.py`, `bench/bench_cli_startup.py`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import click

from gateway import API_VERSION
from gateway.cli_support import admin_database, emit, print_json, settings_from_env
from gateway.errors import OperatorError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.keys import KeyStore
    from gateway.policy.engine import PolicyEngine

_F = TypeVar("_F", bound=Callable[..., Any])

#: The variables an administration command reads, as `--help` lists them.
VARIABLES = (
    ("KETENPOORT_DATABASE_URL", "the database (default sqlite:///var/ketenpoort.db)"),
    ("KETENPOORT_KEYS_DIR", "the key store folder (default keys)"),
    ("KETENPOORT_MASTER_KEY", "seals the private keys (default: a loud development key)"),
    ("KETENPOORT_POLICY", "the active policy file (default policies/twente.yaml)"),
    ("KETENPOORT_ISSUER", "the gateway's URL (default http://127.0.0.1:8080)"),
)


#: A database URL as SQLAlchemy's `make_url` reads it, up to the end of the password.
_URL_PASSWORD = re.compile(r"^(?P<head>[\w+]+://[^:/]*):[^@]*@")


def shown_url(url: str) -> str:
    """The database URL without its password (`***`), as SQLAlchemy renders it with
    `hide_password=True`, without importing SQLAlchemy (`--help` shows it)."""
    if not re.match(r"^[\w+]+://", url):  # a bad URL is reported by the command itself
        return "(an unreadable KETENPOORT_DATABASE_URL)"
    return _URL_PASSWORD.sub(r"\g<head>:***@", url, count=1)


def instance() -> tuple[str, str]:
    """The instance a command acts on, from the environment: the database URL without
    its password, and the key store folder."""
    import os

    from gateway.config import Settings

    shown = shown_url(os.environ.get("KETENPOORT_DATABASE_URL", Settings.database_url))
    keys = os.environ.get("KETENPOORT_KEYS_DIR", str(Settings.keys_dir))
    return shown, str(Path(keys).resolve())


#: Commands that act on no instance of the `KETENPOORT_*` variables (a partner's side,
#: the version, the demo's own folder); every other `--help` names the instance.
NO_INSTANCE = frozenset({"partner", "version", "demo"})


def _instance_epilog(formatter: click.HelpFormatter) -> None:
    database, keys = instance()
    with formatter.section("Instance (from the KETENPOORT_* variables; see `ketenpoort --help`)"):
        formatter.write_dl([("database", database), ("key store", keys)])


def _name_instance(command: click.Command) -> None:
    """Make `command`'s `--help` (each subcommand's, for a group) end with the instance."""
    if getattr(command, "_names_instance", False):
        return
    command._names_instance = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _name_instance(sub)
        return
    original = command.format_epilog

    def format_epilog(ctx: click.Context, formatter: click.HelpFormatter) -> None:
        original(ctx, formatter)
        _instance_epilog(formatter)

    command.format_epilog = format_epilog  # type: ignore[method-assign]


def _usage_error(ctx: click.Context, exc: click.UsageError) -> NoReturn:
    """A usage error as every other error: one `error: …` line on stderr (click's own
    says `Error:` under a usage block), naming the help to read; exit 2. Asking for help
    (a group run without a command) still shows the help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        raise exc
    message = " ".join(exc.format_message().split()).rstrip(".")
    where = (exc.ctx or ctx).command_path
    click.echo(f"error: {message[:1].lower()}{message[1:]} (see `{where} --help`)", err=True)
    ctx.exit(exc.exit_code)


class _Commands(click.Group):
    """The top-level group: the one place operator errors become one line and a code.

    The command groups of the domain packages are imported when they are used (or
    `--help` lists them), not to build the tree: `--version` needs none of them.
    """

    #: command name -> "module:attribute" of its click group
    LAZY: ClassVar[dict[str, str]] = {
        "audit": "gateway.audit.cli:audit",
        "clients": "gateway.partners.cli:clients",
        "partner": "gateway.client.cli:partner",
        "partners": "gateway.partners.cli:partners",
        "policy": "gateway.policy.cli:policy",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.LAZY.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            module, _, attribute = target.partition(":")
            command = getattr(import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        found = super().get_command(ctx, cmd_name)
        if found is not None and cmd_name not in NO_INSTANCE:
            _name_instance(found)
        return found

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_error(ctx, exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperatorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            _usage_error(ctx, exc)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Which instance the administration commands act on, and the variables that say so."""
        database, keys = instance()
        with formatter.section("Instance (administration commands act on it)"):
            formatter.write_dl([("database", database), ("key store", keys)])
        with formatter.section("Environment"):
            formatter.write_dl(VARIABLES)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, as `click.version_option` prints it, reading the version only when asked."""
    if not value or ctx.resilient_parsing:
        return
    from gateway import __version__

    click.echo(f"ketenpoort, version {__version__}")
    ctx.exit()


@click.group(cls=_Commands)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Say on stderr which instance (database, key store) the command acts on.",
)
def main(verbose: bool) -> None:
    """Ketenpoort: the privacy-first data-sharing gateway for chain partners."""
    if verbose:
        database, keys = instance()
        click.echo(f"instance: database {database}, key store {keys}", err=True)


def _listen_options(port_help: str) -> Callable[[_F], _F]:
    """`--host` and `--port` as every serving command takes them, so `serve` and `demo`
    keep one default address and one port range; `port_help` says how the port is checked."""

    def decorate(command: _F) -> _F:
        command = click.option(
            "--port",
            default=8080,
            show_default=True,
            type=click.IntRange(1, 65535),
            help=port_help,
        )(command)
        return click.option(
            "--host", default="127.0.0.1", show_default=True, help="The address to listen on."
        )(command)

    return decorate


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(as_json: bool) -> None:
    """Create or upgrade the database and create missing keys (idempotent)."""
    from gateway.audit.cli import record_init
    from gateway.bootstrap import initialise

    settings = settings_from_env()
    result = initialise(settings)
    record_init(settings, result)
    created = result["keysCreated"]
    emit(
        result,
        as_json,
        f"database at {result['database']} is at migration {result['migration']}; "
        + (f"created keys: {', '.join(created)}" if created else "all keys present"),
    )


@main.command()
@_listen_options(
    "The port to listen on (checked first: a port in use is one line, nothing starts)."
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Gunicorn worker processes (metrics are summed across them).",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker.",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the gateway with gunicorn (a production server)."""
    from gateway.server import run_gunicorn

    settings = settings_from_env()
    run_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)


@main.command()
@_listen_options(
    "The port to listen on (`make run PORT=…`); a port in use is refused before anything."
)
@click.option(
    "--dir",
    "directory",
    default="var/demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The demo instance's folder (emptied first); it writes DIR/env for `source`.",
)
@click.option("--no-serve", is_flag=True, help="Stop after the summary instead of serving.")
def demo(host: str, port: int, directory: Path, no_serve: bool) -> None:
    """A complete demo instance on SQLite with partners and signals, then serve it."""
    from gateway.demo.run import run_demo

    run_demo(directory, host, port, serve=not no_serve)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def version(as_json: bool) -> None:
    """Print the software and API versions."""
    from gateway import __version__

    emit(
        {"version": __version__, "apiVersion": API_VERSION},
        as_json,
        f"ketenpoort {__version__} (API {API_VERSION})",
    )


@main.group()
def signals() -> None:
    """Signals: retention."""


@signals.command("expire")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def signals_expire(as_json: bool) -> None:
    """Expire every signal past its retention now (the gateway also does this each minute)."""
    from gateway.policy.engine import PolicyEngine
    from gateway.policy.loader import load_policy
    from gateway.signals.expiry import expire_signals

    settings = settings_from_env()
    engine = PolicyEngine(load_policy(settings.policy))
    database = admin_database(settings)
    try:
        expired = expire_signals(database, engine)
    finally:
        database.dispose()
    emit({"expired": expired}, as_json, f"{expired} signal(s) expired")


@main.group()
def retention() -> None:
    """Retention: erase what is past its category's retention."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Report what would be erased; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def retention_run(dry_run: bool, as_json: bool) -> None:
    """Erase every signal past its retention and shred the epoch keys of erased months
    (the gateway also does this each minute); reports per category and month."""
    from gateway.actors import cli_actor
    from gateway.lifecycle.cli import progress_bar, report_table
    from gateway.lifecycle.retention import RetentionService

    settings = settings_from_env()
    database = admin_database(settings)
    try:
        service = RetentionService(database, _engine(settings), _keys(settings))
        with progress_bar(enabled=not as_json) as progress:
            report = service.run(
                dry_run=dry_run, actor=cli_actor(), progress=progress, record_empty=True
            )
    finally:
        database.dispose()
    if as_json:
        print_json(report.as_json())
    else:
        report_table(report)
        click.echo(report.summary())


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def backup(directory: Path, as_json: bool) -> None:
    """A consistent snapshot of the database into DIRECTORY (new or empty), and a copy of
    the key store in DIRECTORY/keys: keep that one apart from the database copy."""
    from gateway.actors import cli_actor
    from gateway.lifecycle.backup import create_backup
    from gateway.lifecycle.cli import progress_bar

    settings = settings_from_env()
    admin_database(settings).dispose()  # an uninitialised instance: one line, nothing made
    with progress_bar(enabled=not as_json, label="backing up") as progress:
        result = create_backup(settings, directory, actor=cli_actor(), progress=progress)
    emit(
        result,
        as_json,
        f"backed up the {result['backend']} database (migration {result['migration']}) "
        f"to {result['database']} and the key store to {result['keys']}; "
        "keep the key store copy apart from the database copy",
    )


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--keys",
    "keys_from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where the key store backup is kept (default: DIRECTORY/keys).",
)
@click.option(
    "--keep-keys",
    is_flag=True,
    help="Restore the database only and keep the current key store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def restore(directory: Path, keys_from: Path | None, keep_keys: bool, as_json: bool) -> None:
    """Restore a backup made by `ketenpoort backup` into this instance (stop the gateway
    first); refused when the backup's audit log does not verify."""
    from gateway.actors import cli_actor
    from gateway.lifecycle.backup import restore_backup
    from gateway.lifecycle.cli import progress_bar

    if keys_from is not None and keep_keys:
        raise click.UsageError("--keys and --keep-keys exclude each other")
    settings = settings_from_env()
    with progress_bar(enabled=not as_json, label="verifying the backup's audit log") as progress:
        result = restore_backup(
            settings,
            directory,
            actor=cli_actor(),
            keys_from=keys_from,
            keep_keys=keep_keys,
            progress=progress,
        )
    emit(
        result,
        as_json,
        f"restored the backup of {result['backupCreated']}: its audit log of "
        f"{result['auditEntries']} entries verifies; "
        + ("key store restored" if result["keysRestored"] else "key store kept"),
    )


@main.group()
def keys() -> None:
    """The gateway's keys."""


@keys.command("rotate")
@click.argument(
    "kind", type=click.Choice(["token-signing", "checkpoint", "pseudonym", "encryption"])
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keys_rotate(kind: str, as_json: bool) -> None:
    """Rotate one key without downtime (audited): the new key is published before use and
    the old one retired, still verifying and decrypting what it made. `pseudonym` moves
    every stored pseudonym to the new key in batches (with progress; run it again to
    resume after a crash)."""
    from gateway.actors import cli_actor
    from gateway.lifecycle.rotation import rotate_key

    settings = settings_from_env()
    database = admin_database(settings)
    try:
        if kind == "pseudonym":
            from gateway.lifecycle.cli import progress_bar
            from gateway.lifecycle.pseudonym_rotation import rotate_pseudonym_key

            with progress_bar(enabled=not as_json, label="rotating pseudonyms") as progress:
                result = rotate_pseudonym_key(
                    database, _keys(settings), actor=cli_actor(), progress=progress
                )
        else:
            result = rotate_key(database, _keys(settings), kind, actor=cli_actor())
    finally:
        database.dispose()
    emit(
        result,
        as_json,
        f"{kind} key rotated: new key {result['kid']}; retired "
        + (", ".join(result["retired"]) or "none")
        + (f"; {result['rows']} pseudonyms moved" if kind == "pseudonym" else ""),
    )


def _engine(settings: Settings) -> PolicyEngine:
    from gateway.policy.engine import PolicyEngine
    from gateway.policy.loader import load_policy

    return PolicyEngine(load_policy(settings.policy))


def _keys(settings: Settings) -> KeyStore:
    from gateway.keys import KeyStore, load_master_key

    return KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )


@main.group()
def users() -> None:
    """People at the meldpunt and professionals of partners (for the web UI)."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help="coordinator, privacy-officer, admin or professional")
@click.option(
    "--organisation",
    default=None,
    metavar="ORG",
    help="A professional's registered partner organisation (web intake).",
)
@click.option("--json", is_flag=True, expose_value=False, help="Print JSON (it always does).")
def users_add(name: str, role: str, organisation: str | None) -> None:
    """Create a user; prints JSON with the one-time password and the TOTP secret."""
    import gateway.models  # noqa: F401  (every table: a user's organisation is a foreign key)
    from gateway.actors import cli_actor
    from gateway.keys import KeyStore, load_master_key
    from gateway.users.service import add_user

    settings = settings_from_env()
    database = admin_database(settings)
    try:
        keys = KeyStore(
            settings.keys_dir,
            load_master_key(settings.keys_dir, settings.master_key, create=False),
        )
        with database.transaction() as session:
            created = add_user(
                session,
                keys,
                name=name,
                role=role,
                actor=cli_actor(),
                organisation=organisation,
            )
    finally:
        database.dispose()
    click.echo(json.dumps(created.as_json(), indent=2))


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(main())
