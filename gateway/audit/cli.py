"""`ketenpoort audit …`: verify the log, export it, run the sequencer once."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from gateway.cli_support import admin_database, settings_from_env
from gateway.errors import OperatorError

T = TypeVar("T")

if TYPE_CHECKING:
    from gateway.audit.note import VerifierKey
    from gateway.audit.verify import Report
    from gateway.config import Settings


def _public_keys(settings: Settings) -> list[VerifierKey]:
    """The checkpoint keys from the key store's public records (no master key needed)."""
    from gateway.audit.note import VerifierKey, origin_for
    from gateway.crypto import ed25519
    from gateway.keys import KeyPurpose, KeyStore

    store = KeyStore.public_only(settings.keys_dir)
    origin = origin_for(settings.issuer)
    return [
        VerifierKey(origin, ed25519.public_key_bytes(r.public_jwk))
        for r in store.records(KeyPurpose.AUDIT_CHECKPOINT)
        if r.public_jwk is not None
    ]


def _read_key(value: str) -> VerifierKey:
    from gateway.audit.note import NoteError, VerifierKey

    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        return VerifierKey.parse(text)
    except NoteError as exc:
        raise OperatorError(f"--key: {exc}") from None


def _record_cli(settings: Settings, action: str, outcome: str, detail: dict[str, Any]) -> None:
    """A CLI administration step is an audit entry too."""
    from gateway.actors import cli_actor
    from gateway.audit import AuditEvent, record_event

    database = admin_database(settings)
    try:
        with database.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action=action,
                    outcome=outcome,  # type: ignore[arg-type]
                    actor=cli_actor(),
                    resource_type="audit-log",
                    detail=detail,
                ),
            )
    finally:
        database.dispose()


def record_init(settings: Settings, result: dict[str, Any]) -> None:
    """`ketenpoort init` is an administration step: an entry per created key, one for the run."""
    from gateway.actors import cli_actor
    from gateway.audit import AuditEvent, record_event
    from gateway.db import Database

    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            for created in result["keysCreated"]:
                purpose, _, kid = created.partition(":")
                record_event(
                    session,
                    AuditEvent(
                        action="key.create",
                        outcome="success",
                        actor=cli_actor(),
                        resource_type="key",
                        resource_id=kid,
                        detail={"purpose": purpose},
                    ),
                )
            record_event(
                session,
                AuditEvent(
                    action="admin.init",
                    outcome="success",
                    actor=cli_actor(),
                    resource_type="database",
                    detail={"migration": result["migration"]},
                ),
            )
    finally:
        database.dispose()


@contextmanager
def _progress(
    total: int | None, enabled: bool, label: str = "verifying"
) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on a terminal for long logs; nothing otherwise."""
    if not enabled or not sys.stderr.isatty() or (total is not None and total < 50_000):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _finish(report: Report, as_json: bool) -> None:
    data = report.as_json()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif report.ok:
        click.echo(
            f"ok: {report.entries} entries and {report.checkpoints} checkpoint(s) verify; "
            f"root {data['rootHash']} ({data['entriesPerSecond'] or '-'} entries/s)"
        )
    first = report.first_bad
    if first is not None:
        click.echo(f"error: first bad index {first.index}: {first.problem}", err=True)
        sys.exit(1)


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command()
@click.option("--url", help="Verify a gateway over its API instead of the database.")
@click.option(
    "--token",
    envvar="KETENPOORT_AUDIT_TOKEN",
    help="Access token with audit:read for --url (or KETENPOORT_AUDIT_TOKEN).",
)
@click.option("--key", "key_text", help="Verifier key (text or file); default: the key store.")
@click.option(
    "--checkpoint",
    "witnessed",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept earlier (e.g. by a witness); the log must agree with it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def verify(
    url: str | None,
    token: str | None,
    key_text: str | None,
    witnessed: tuple[Path, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Verify every entry, every checkpoint and their consistency; exit 1 naming the first
    bad index."""
    from gateway.audit.verify import (
        GatewaySource,
        VerificationUnavailable,
        requests_fetch,
        verify_gateway,
        verify_log,
    )
    from gateway.audit.verify_rows import database_source

    notes = [p.read_text() for p in witnessed]
    if url is not None:
        source = GatewaySource(requests_fetch(url, token))
        key = _read_key(key_text) if key_text else None
        try:
            with _progress(None, not no_progress) as progress:
                report = verify_gateway(source, key=key, witnessed=notes, progress=progress)
        except VerificationUnavailable as exc:
            raise OperatorError(str(exc)) from None
        _finish(report, as_json)
        return
    settings = settings_from_env()
    admin_database(settings).dispose()  # an uninitialised database: one line, nothing created
    keys = [_read_key(key_text)] if key_text else _public_keys(settings)
    if not keys:
        raise OperatorError("no audit-checkpoint key found; give --key")
    entries, checkpoints, close = database_source(settings.database_url)
    try:
        with _progress(_count(settings.database_url), not no_progress) as progress:
            report = verify_log(
                entries, checkpoints, keys, origin=keys[0].name, witnessed=notes, progress=progress
            )
    finally:
        close()
    first = report.first_bad
    _record_cli(
        settings,
        "audit.verify",
        "success" if report.ok else "error",
        {"entries": report.entries, "firstBadIndex": first.index if first else None},
    )
    _finish(report, as_json)


def _count(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM audit_entries WHERE seq IS NOT NULL")
                ).scalar_one()
            )
    finally:
        engine.dispose()


@audit.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ldv", "jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="ldv: Logboek Dataverwerkingen records, one per data subject, no user identities.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: stdout).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def export(fmt: str, output: Path | None, no_progress: bool) -> None:
    """Export the sequenced log from the database (a progress bar on stderr for a long
    log, when the export goes to a file or a pipe)."""
    from gateway.actors import Actor
    from gateway.audit import export as formats
    from gateway.audit.models import AuditEntryRow
    from gateway.audit.queries import EntryFilter, entries_query, stream
    from gateway.audit.tree import latest_checkpoint

    settings = settings_from_env()
    database = admin_database(settings)
    try:
        with database.session() as session:
            latest = latest_checkpoint(session)
            size = latest.size if latest is not None else 0
        _record_cli(settings, "audit.export", "success", {"format": fmt, "treeSize": size})
        everyone = Actor(type="system", id="cli-export", scopes=frozenset({"audit:read"}))
        stmt = entries_query(everyone, EntryFilter()).where(AuditEntryRow.seq < size)
        handle: TextIO
        shown = not no_progress and (output is not None or not sys.stdout.isatty())
        with (
            database.session() as session,
            output.open("w", encoding="utf-8", newline="") if output else _stdout() as handle,
            _progress(size, shown, "exporting") as tick,
        ):
            for line in formats.FORMATS[fmt](_counted(stream(session, stmt), tick)):
                handle.write(line)
    finally:
        database.dispose()


def _counted(entries: Iterator[T], tick: Callable[[int], None] | None) -> Iterator[T]:
    """`entries` as they are, telling `tick` how many have gone every thousand."""
    done = 0
    for done, entry in enumerate(entries, 1):
        if tick is not None and done % 1000 == 0:
            tick(done)
        yield entry
    if tick is not None:
        tick(done)


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout
    sys.stdout.flush()


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sequence(as_json: bool) -> None:
    """Sequence every pending entry now and sign a checkpoint (the gateway does this itself)."""
    from gateway.audit.sequencer import sequence_pending, signer_from
    from gateway.audit.tree import latest_checkpoint
    from gateway.keys import KeyStore, load_master_key

    settings = settings_from_env()
    keys = KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )
    signer = signer_from(keys, settings.issuer)
    database = admin_database(settings)
    try:
        count = sequence_pending(database, signer)
        with database.session() as session:
            latest = latest_checkpoint(session)
            size = latest.size if latest is not None else 0
    finally:
        database.dispose()
    data = {"sequenced": count, "treeSize": size}
    click.echo(json.dumps(data, indent=2) if as_json else f"sequenced {count}; tree size {size}")
