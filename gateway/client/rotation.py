"""`ketenpoort partner keys rotate`: a partner rotates its own signing and encryption keys.

There is no API through which a partner registers keys itself (a new key is trusted
only because the meldpunt's operator registered it), so a rotation has two runs of the
same command around one operator step:

1. **Start**: new key pairs are written beside the current ones in the partner's key
   folder (mode 0600), with a public JWKS of the new keys, and `rotation.json` records
   the rotation; the command prints the exact `ketenpoort partners keys add` the
   meldpunt's operator runs. The configuration still names the old keys, which keep
   working: nothing stops meanwhile.
2. **Finish** (the same command again): once the gateway accepts the new signing key
   (a token is issued for it) and its directory publishes the new encryption key, the
   configuration is switched to the new keys. The old encryption key stays in the
   configuration as `previous_encryption_keys`, so shares encrypted to it still open;
   the command prints the `ketenpoort partners keys remove` for the old keys, to run
   when they are no longer needed. Until the gateway knows the new keys, the command
   says the rotation is still pending and changes nothing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.client.client import PartnerClient
from gateway.client.errors import KetenpoortError, OAuthError

PENDING_FILE = "rotation.json"
MakeClient = Callable[[dict[str, Any]], PartnerClient]


class RotationError(KetenpoortError):
    """The rotation cannot go on; the message says what to do."""


def _read_jwk(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def new_key_pairs(folder: Path, kinds: tuple[str, ...], stamp: str) -> dict[str, Any]:
    """New private keys (`signing` / `encryption`) in `folder` and the public JWKS."""
    from joserfc.jwk import ECKey

    uses = {"signing": ("sig", "ES256"), "encryption": ("enc", "ECDH-ES+A256KW")}
    public = []
    made: dict[str, Any] = {}
    for name in kinds:
        use, alg = uses[name]
        key = ECKey.generate_key("P-256", private=True)
        extra = {"kid": key.thumbprint(), "use": use, "alg": alg}
        path = folder / f"{name}-{stamp}.jwk.json"
        _write_private(path, {**key.as_dict(private=True), **extra})
        public.append({**key.as_dict(private=False), **extra})
        made[name] = {"path": str(path), "kid": extra["kid"]}
    jwks_path = folder / f"public-{stamp}.jwks.json"
    jwks_path.write_text(json.dumps({"keys": public}, indent=2))
    made["public"] = str(jwks_path)
    return made


def _organisation(client: PartnerClient, config: dict[str, Any]) -> str | None:
    """This partner's organisation id: the directory entry holding its encryption key."""
    encryption = config.get("encryption_key")
    if not encryption:
        return None
    kid = _read_jwk(encryption).get("kid")
    for org in client.directory():
        if any(k.get("kid") == kid for k in org.get("encryptionKeys", {}).get("keys", [])):
            return str(org["id"])
    return None


def _add_command(pending: dict[str, Any]) -> str:
    org = pending.get("organisation") or "<your organisation id>"
    command = f"ketenpoort partners keys add {org} --jwks {Path(pending['public']).name}"
    if "signing" in pending:
        command += f" --client {pending['clientId']}"
    return command


def _registered(pending: dict[str, Any], config: dict[str, Any], make: MakeClient) -> list[str]:
    """What the gateway does not accept yet of the new keys (empty: all registered)."""
    missing = []
    if "signing" in pending:
        trial = make({**config, "signing_key": pending["signing"]["path"]})
        try:
            trial.access_token()
        except OAuthError:
            missing.append(f"signing key {pending['signing']['kid']}")
    if "encryption" in pending:
        kid = pending["encryption"]["kid"]
        orgs = make(config).directory()
        if not any(
            k.get("kid") == kid for o in orgs for k in o.get("encryptionKeys", {}).get("keys", [])
        ):
            missing.append(f"encryption key {kid}")
    return missing


def rotate_partner_keys(
    config_path: Path,
    config: dict[str, Any],
    make: MakeClient,
    *,
    kinds: tuple[str, ...] = ("signing", "encryption"),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Start a rotation, or finish the one started (see the module's docstring)."""
    if not config_path.exists():
        raise RotationError(
            f"the configuration file {config_path} does not exist: a rotation switches the "
            "keys it names (give it with --config)"
        )
    folder = Path(config["signing_key"]).resolve().parent
    pending_path = folder / PENDING_FILE
    if not pending_path.exists():
        kinds = tuple(k for k in kinds if k != "encryption" or config.get("encryption_key"))
        if not kinds:
            raise RotationError("nothing to rotate")
        client = make(config)
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        pending = {
            **new_key_pairs(folder, kinds, stamp),
            "organisation": _organisation(client, config),
            "clientId": config["client_id"],
            "started": (now or datetime.now(UTC)).isoformat(),
        }
        pending_path.write_text(json.dumps(pending, indent=2))
        return {
            "status": "pending",
            "newKeyIds": {k: pending[k]["kid"] for k in kinds},
            "publicJwks": pending["public"],
            "operatorCommand": _add_command(pending),
            "next": "once the meldpunt ran the command, run `ketenpoort partner keys rotate` "
            "again to switch to the new keys; the old keys work until then",
        }
    pending = json.loads(pending_path.read_text())
    missing = _registered(pending, config, make)
    if missing:
        return {
            "status": "pending",
            "waitingFor": missing,
            "publicJwks": pending["public"],
            "operatorCommand": _add_command(pending),
            "next": "the gateway does not accept the new keys yet; the old keys keep working",
        }
    saved: dict[str, Any] = json.loads(config_path.read_text())
    old: dict[str, str] = {}
    if "signing" in pending:
        old["signing"] = _read_jwk(config["signing_key"])["kid"]
        saved["signing_key"] = pending["signing"]["path"]
    if "encryption" in pending:
        previous = str(config["encryption_key"])
        old["encryption"] = _read_jwk(previous)["kid"]
        saved["encryption_key"] = pending["encryption"]["path"]
        kept = [p for p in saved.get("previous_encryption_keys", []) if p != previous]
        saved["previous_encryption_keys"] = [previous, *kept]
    tmp = config_path.with_name(f".{config_path.name}.tmp")
    tmp.write_text(json.dumps(saved, indent=2))
    os.replace(tmp, config_path)
    pending_path.unlink()
    org = pending.get("organisation") or "<your organisation id>"
    return {
        "status": "switched",
        "keyIds": {k: pending[k]["kid"] for k in ("signing", "encryption") if k in pending},
        "retiredKeyIds": old,
        "operatorCommands": [
            f"ketenpoort partners keys remove {org} --kid {kid}" for kid in old.values()
        ],
        "next": "the old keys stay in the key folder (the old encryption key as "
        "previous_encryption_keys, to open shares encrypted to it); ask the meldpunt to "
        "remove them from the gateway once no longer needed",
    }
