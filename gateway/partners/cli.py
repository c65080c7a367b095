"""`ketenpoort partners add|list|disable|keys add|keys remove` and `ketenpoort clients add`.

Each step runs in one transaction with its audit entry (actor: the operator) and
prints JSON with `--json` (always for `add`, which an operator scripts around).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gateway.cli_support import admin_database, print_json, settings_from_env
from gateway.partners.kinds import KINDS

if TYPE_CHECKING:
    from gateway.db import Database


def _database() -> Database:
    return admin_database(settings_from_env())


def _separate_scopes() -> list[list[str]]:
    """The active policy's `separate_scopes` (the policy package validates the file; this
    package sits below it, so it reads the one key). Unreadable: the default applies."""
    import yaml

    from gateway.partners.registry import DEFAULT_SEPARATE_SCOPES

    try:
        data = yaml.safe_load(Path(settings_from_env().policy).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    found = data.get("separate_scopes") if isinstance(data, dict) else None
    if isinstance(found, list) and all(
        isinstance(g, list) and all(isinstance(s, str) for s in g) for g in found
    ):
        return found
    return [list(group) for group in DEFAULT_SEPARATE_SCOPES]


def _print(data: Any) -> None:
    print_json(data)


_F = TypeVar("_F", bound=Callable[..., Any])


def _jwks_option(help_text: str) -> Callable[[_F], _F]:
    """`--jwks FILE` (required), a public JWKS as `load_jwks_file` reads it; `help_text`
    says which keys of it the command takes."""
    return click.option(
        "--jwks", "jwks_file", required=True, type=click.Path(path_type=Path), help=help_text
    )


@click.group()
def partners() -> None:
    """Register, list and disable partner organisations."""


@partners.command("add")
@click.argument("org")
@click.option("--name", required=True, help="Display name of the organisation.")
@click.option("--kind", required=True, help=f"One of: {', '.join(KINDS)}.")
@_jwks_option(
    "The partner's public.jwks.json (`ketenpoort partner keys init`): its `use: enc` "
    "keys go in the directory, its `use: sig` keys authenticate the client."
)
@click.option("--scope", default=None, help="Space-separated scopes of its first client.")
@click.option("--require-dpop", is_flag=True, help="Its client must use DPoP-bound tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default for add).")
def partners_add(
    org: str,
    name: str,
    kind: str,
    jwks_file: Path,
    scope: str | None,
    require_dpop: bool,
    as_json: bool,
) -> None:
    """Register organisation ORG and its first OAuth client; prints the client_id."""
    from gateway.actors import cli_actor
    from gateway.partners.registry import (
        RegistryError,
        add_client,
        add_organisation,
        check_separation,
        load_jwks_file,
        parse_scopes,
        split_jwks,
    )

    database = _database()
    try:
        if kind not in KINDS:
            raise RegistryError(f"unknown kind {kind!r}; choose from: {', '.join(KINDS)}")
        signing, encryption = split_jwks(load_jwks_file(jwks_file))
        scopes = parse_scopes(scope, kind)
        check_separation(scopes, _separate_scopes())
        actor = cli_actor()
        with database.transaction() as session:
            organisation = add_organisation(
                session,
                org_id=org,
                name=name,
                kind=kind,
                encryption_keys=encryption,
                actor=actor,
            )
            client = add_client(
                session,
                org_id=org,
                signing_keys=signing,
                scopes=scopes,
                require_dpop=require_dpop,
                actor=actor,
            )
            result = {
                "organisation": organisation.id,
                "kind": organisation.kind,
                "client_id": client.client_id,  # the contract's name (RFC 7591)
                "clientId": client.client_id,
                "scope": client.scopes,
                "requireDpop": client.require_dpop,
                "encryptionKeyIds": [k["kid"] for k in encryption],
                "signingKeyIds": [k["kid"] for k in signing],
            }
    finally:
        database.dispose()
    _print(result)


@partners.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def partners_list(as_json: bool) -> None:
    """List organisations with their clients."""
    from gateway.partners.registry import list_organisations

    database = _database()
    try:
        with database.transaction(write=False) as session:
            found = list_organisations(session)
    finally:
        database.dispose()
    if as_json:
        _print({"organisations": found})
        return
    rows = [("ORGANISATION", "KIND", "STATUS", "NAME", "CLIENTS")] + [
        (
            org["id"],
            org["kind"],
            org["status"],
            org["name"],
            ", ".join(c["client_id"] for c in org["clients"]) or "-",
        )
        for org in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )


@partners.command("disable")
@click.argument("org")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def partners_disable(org: str, as_json: bool) -> None:
    """Disable ORG and all its clients; their access tokens stop working at once."""
    from gateway.actors import cli_actor
    from gateway.partners.registry import disable_organisation

    database = _database()
    try:
        with database.transaction() as session:
            organisation = disable_organisation(session, org, actor=cli_actor())
            result = {"organisation": organisation.id, "status": organisation.status}
    finally:
        database.dispose()
    if as_json:
        _print(result)
    else:
        click.echo(f"{org} disabled")


@partners.group("keys")
def partner_keys() -> None:
    """Add and remove a partner's own keys (its side of a key rotation)."""


@partner_keys.command("add")
@click.argument("org")
@_jwks_option(
    "The new public JWKS (`ketenpoort partner keys rotate`); added beside the current keys."
)
@click.option("--client", "client_id", help="The client for `use: sig` keys (if ORG has several).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default for add).")
def partner_keys_add(org: str, jwks_file: Path, client_id: str | None, as_json: bool) -> None:
    """Register ORG's new public keys (the public JWKS `ketenpoort partner keys rotate`
    made) beside its current ones; the old keys keep working until removed."""
    from gateway.actors import cli_actor
    from gateway.partners.registry import add_partner_keys, load_jwks_file

    database = _database()
    try:
        jwks = load_jwks_file(jwks_file)
        with database.transaction() as session:
            result = add_partner_keys(session, org, jwks, actor=cli_actor(), client_id=client_id)
    finally:
        database.dispose()
    _print(result)


@partner_keys.command("remove")
@click.argument("org")
@click.option("--kid", required=True, help="The key to remove (an old one, after a rotation).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def partner_keys_remove(org: str, kid: str, as_json: bool) -> None:
    """Remove one of ORG's keys once the partner no longer uses it."""
    from gateway.actors import cli_actor
    from gateway.partners.registry import remove_partner_key

    database = _database()
    try:
        with database.transaction() as session:
            result = remove_partner_key(session, org, kid, actor=cli_actor())
    finally:
        database.dispose()
    if as_json:
        _print(result)
    else:
        click.echo(f"{org}: {result['use']} key {kid} removed")


@click.group()
def clients() -> None:
    """Register OAuth clients for existing organisations."""


@clients.command("add")
@click.argument("org")
@_jwks_option("The system's public JWKS; its `use: sig` keys authenticate the client.")
@click.option("--scope", required=True, help='Space-separated scopes, e.g. "cases:write".')
@click.option("--require-dpop", is_flag=True, help="The client must use DPoP-bound tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default for add).")
def clients_add(org: str, jwks_file: Path, scope: str, require_dpop: bool, as_json: bool) -> None:
    """Register another OAuth client of ORG (its `use: sig` keys); prints the client_id."""
    from gateway.actors import cli_actor
    from gateway.partners.registry import (
        RegistryError,
        add_client,
        check_separation,
        get_organisation,
        load_jwks_file,
        parse_scopes,
        split_jwks,
    )

    database = _database()
    try:
        signing, _encryption = split_jwks(load_jwks_file(jwks_file))
        with database.transaction() as session:
            organisation = get_organisation(session, org)
            if organisation is None:
                raise RegistryError(f"no organisation {org!r}; register it with `partners add`")
            scopes = parse_scopes(scope, organisation.kind)
            check_separation(scopes, _separate_scopes())
            client = add_client(
                session,
                org_id=org,
                signing_keys=signing,
                scopes=scopes,
                require_dpop=require_dpop,
                actor=cli_actor(),
            )
            result = {
                "organisation": org,
                "client_id": client.client_id,  # the contract's name (RFC 7591)
                "clientId": client.client_id,
                "scope": client.scopes,
                "requireDpop": client.require_dpop,
                "signingKeyIds": [k["kid"] for k in signing],
            }
    finally:
        database.dispose()
    _print(result)
