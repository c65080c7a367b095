"""`ketenpoort partner …`: the partner client from the command line.

Configuration comes from a JSON file (`--config`, default `ketenpoort-partner.json`)
and the environment (`KETENPOORT_PARTNER_ISSUER`, `_CLIENT_ID`, `_SIGNING_KEY`,
`_ENCRYPTION_KEY`, `_STATE`, `_DPOP`), the environment winning.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.client.errors import ApiError, KetenpoortError, OAuthError
from gateway.errors import OperatorError

if TYPE_CHECKING:
    from gateway.client.client import PartnerClient

CONFIG_KEYS = ("issuer", "client_id", "signing_key", "encryption_key", "state", "dpop")
#: Only in the file: earlier encryption keys (after `partner keys rotate`), for shares.
PREVIOUS_ENCRYPTION_KEYS = "previous_encryption_keys"


#: `--json` on a command that prints JSON anyway: accepted, so that every command that
#: prints a result takes it (DESIGN.md) and scripts can pass it to each alike.
ALWAYS_JSON = click.option(
    "--json", is_flag=True, expose_value=False, help="Print JSON (this command always does)."
)


def load_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if path.exists():
        config.update(json.loads(path.read_text()))
    for key in CONFIG_KEYS:
        value = os.environ.get(f"KETENPOORT_PARTNER_{key.upper()}")
        if value:
            config[key] = value
    missing = [k for k in ("issuer", "client_id", "signing_key") if not config.get(k)]
    if missing and not path.exists():
        raise OperatorError(
            f"the configuration file {path} does not exist (give one with --config, or set "
            + ", ".join(f"KETENPOORT_PARTNER_{k.upper()}" for k in missing)
            + ")"
        )
    if missing:
        raise OperatorError(
            f"missing configuration: {', '.join(missing)} (set them in {path} or as "
            + ", ".join(f"KETENPOORT_PARTNER_{k.upper()}" for k in missing)
            + ")"
        )
    return config


def make_client(config: dict[str, Any]) -> PartnerClient:
    from gateway.client.client import PartnerClient

    dpop = str(config.get("dpop", "true")).lower() not in {"0", "false", "no"}
    return PartnerClient(
        config["issuer"],
        config["client_id"],
        signing_key=config["signing_key"],
        encryption_key=config.get("encryption_key"),
        dpop=dpop,
        state_path=config.get("state", "ketenpoort-partner-state.json"),
        previous_encryption_keys=config.get(PREVIOUS_ENCRYPTION_KEYS) or (),
    )


def _write_private(path: Path, data: dict[str, Any]) -> None:
    if path.exists():
        raise OperatorError(f"{path} exists; refusing to overwrite a key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def generate_partner_keys(directory: Path) -> dict[str, Path]:
    """A signing and an encryption key pair, and the public JWKS for the meldpunt."""
    from joserfc.jwk import ECKey

    directory.mkdir(parents=True, exist_ok=True)
    public = []
    paths: dict[str, Path] = {}
    for name, use, alg in (("signing", "sig", "ES256"), ("encryption", "enc", "ECDH-ES+A256KW")):
        key = ECKey.generate_key("P-256", private=True)
        extra = {"kid": key.thumbprint(), "use": use, "alg": alg}
        paths[name] = directory / f"{name}.jwk.json"
        _write_private(paths[name], {**key.as_dict(private=True), **extra})
        public.append({**key.as_dict(private=False), **extra})
    paths["public"] = directory / "public.jwks.json"
    paths["public"].write_text(json.dumps({"keys": public}, indent=2))
    return paths


#: What each configuration key is, as `ketenpoort partner --help` lists the variables.
CONFIG_HELP = {
    "issuer": "the gateway's base URL",
    "client_id": "the client id the meldpunt registered (`partners add` printed it)",
    "signing_key": "the private signing key file (signing.jwk.json)",
    "encryption_key": "the private encryption key file (encryption.jwk.json)",
    "state": "where receipts, the last checkpoint and the feed position are kept",
    "dpop": "false to use bearer tokens (default true: DPoP-bound)",
}


class _Errors(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The variables a partner command reads (they win over the --config file)."""
        with formatter.section("Environment (each wins over its key in --config)"):
            formatter.write_dl(
                [(f"KETENPOORT_PARTNER_{k.upper()}", text) for k, text in CONFIG_HELP.items()]
            )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            detail = "; ".join(f"{e.get('pointer')}: {e.get('detail')}" for e in exc.errors)
            raise OperatorError(
                f"{exc.status} {exc.slug}: {exc.detail}" + (f" ({detail})" if detail else "")
            ) from None
        except OAuthError as exc:
            raise OperatorError(f"token refused: {exc.error}: {exc.description}") from None
        except KetenpoortError as exc:
            raise OperatorError(str(exc)) from None


@click.group(cls=_Errors)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("ketenpoort-partner.json"),
    show_default=True,
    help="The partner's configuration (JSON: issuer, client_id, signing_key, "
    "encryption_key, state, dpop); a KETENPOORT_PARTNER_* variable wins over its key.",
)
@click.pass_context
def partner(ctx: click.Context, config_path: Path) -> None:
    """Act as a partner system: keys, submit, notifications, withdraw, verify."""
    ctx.obj = config_path


@partner.group()
def keys() -> None:
    """Partner key pairs."""


@keys.command("init")
@ALWAYS_JSON
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write them (on the partner's side, never in the gateway's key store).",
)
def keys_init(directory: Path) -> None:
    """Create a signing and an encryption key pair and the public JWKS to hand over."""
    paths = generate_partner_keys(directory)
    click.echo(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))


@keys.command("rotate")
@click.option("--only", type=click.Choice(["signing", "encryption"]), help="Rotate one key only.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def keys_rotate(config_path: Path, only: str | None, as_json: bool) -> None:
    """Rotate your own keys: the first run makes new keys and prints the command the
    meldpunt runs to register them; run it again afterwards to switch to them (the old
    keys keep working until then)."""
    from gateway.client.rotation import rotate_partner_keys

    kinds = (only,) if only else ("signing", "encryption")
    result = rotate_partner_keys(config_path, load_config(config_path), make_client, kinds=kinds)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"status: {result['status']}")
    for command in [result.get("operatorCommand"), *result.get("operatorCommands", [])]:
        if command:
            click.echo(f"meldpunt operator runs: {command}")
    click.echo(result["next"])


@partner.command()
@ALWAYS_JSON
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--blind",
    is_flag=True,
    help="Send only blinded match keys (RFC 9497 VOPRF): the identifiers stay here.",
)
@click.pass_obj
def submit(config_path: Path, file: Path, blind: bool) -> None:
    """Submit a signal from FILE (JSON: reference, category, subject, payload in plain text)."""
    data = json.loads(file.read_text())
    client = make_client(load_config(config_path))
    client.blind = blind
    created = client.submit_signal(
        data["reference"],
        data["category"],
        data["subject"],
        data["payload"],
        idempotency_key=data.get("idempotencyKey"),
    )
    click.echo(json.dumps(created, indent=2))


@partner.command()
@ALWAYS_JSON
@click.pass_obj
@click.option(
    "--from-start",
    is_flag=True,
    help="Read the whole feed again (from its first notification), not only what is new.",
)
def notifications(config_path: Path, from_start: bool) -> None:
    """Print the notifications that arrived since the last call."""
    client = make_client(load_config(config_path))
    click.echo(json.dumps(client.notifications(from_start=from_start), indent=2))


@partner.command()
@ALWAYS_JSON
@click.argument("signal_id")
@click.pass_obj
def withdraw(config_path: Path, signal_id: str) -> None:
    """Withdraw one of your signals."""
    client = make_client(load_config(config_path))
    click.echo(json.dumps(client.withdraw(signal_id), indent=2))


@partner.command()
@ALWAYS_JSON
@click.pass_obj
def matches(config_path: Path) -> None:
    """List matches (the meldpunt's own systems, scope cases:write)."""
    client = make_client(load_config(config_path))
    click.echo(json.dumps(list(client.matches()), indent=2))


@partner.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of JSON lines.")
@click.pass_obj
def shares(config_path: Path, as_json: bool) -> None:
    """Shares with your organisation, decrypted with your encryption key."""
    client = make_client(load_config(config_path))
    if as_json:
        click.echo(json.dumps(list(client.shares()), indent=2, ensure_ascii=False))
        return
    for share in client.shares():
        click.echo(json.dumps(share, ensure_ascii=False))


@partner.command()
@ALWAYS_JSON
@click.pass_obj
def verify(config_path: Path) -> None:
    """Check your receipts and that the audit log only grew since you last looked."""
    client = make_client(load_config(config_path))
    click.echo(json.dumps(client.verify().as_json(), indent=2))


@partner.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checklist as JSON.")
@click.pass_obj
def check(config_path: Path, as_json: bool) -> None:
    """Check this partner's set-up against the gateway: discovery, clock, token, directory,
    policy, encryption, a test signal (where the policy reserves a category with `test:
    true`: checked, then erased at once, never matched or shared), notifications and
    receipts; each line pass/fail with the fix. Exit 1 on a failure."""
    from gateway.client.check import Checklist, as_text
    from gateway.client.check import as_json as checks_json

    results = Checklist(make_client(load_config(config_path))).run()
    click.echo(json.dumps(checks_json(results), indent=2) if as_json else as_text(results))
    if any(r.status == "fail" for r in results):
        raise SystemExit(1)
