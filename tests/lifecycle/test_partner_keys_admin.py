"""`partners keys add|remove`: a partner's new keys beside its current ones, refusals
that name the fix, and an audit entry per change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.cli import main
from gateway.partners.registry import add_client, add_organisation, list_organisations
from tests.audit.test_verify import cli_env
from tests.oauth.support import ADMIN, enc_key, new_key, public_of


def _cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env(app.extensions["ketenpoort"].settings))


def _jwks(tmp_path: Path, name: str, *keys: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"keys": list(keys)}))
    return str(path)


def test_keys_are_added_beside_the_old_ones_and_removed_when_no_longer_needed(
    app: Flask, tmp_path: Path
) -> None:
    db = app.extensions["ketenpoort"].db
    old_sig, (_, old_enc) = public_of(new_key()), enc_key()
    with db.transaction() as session:
        add_organisation(
            session, org_id="wijkteam-x", name="W", kind="municipality",
            encryption_keys=[old_enc], actor=ADMIN,
        )  # fmt: skip
        first = add_client(
            session, org_id="wijkteam-x", signing_keys=[{**old_sig, "use": "sig"}],
            scopes=("signals:write",), require_dpop=False, actor=ADMIN,
        ).client_id  # fmt: skip
    new_sig, (_, new_enc) = public_of(new_key()), enc_key()
    added = _cli(app, "partners", "keys", "add", "wijkteam-x", "--jwks",
                 _jwks(tmp_path, "new.json", new_sig, new_enc))  # fmt: skip
    assert added.exit_code == 0, added.output
    result = json.loads(added.stdout)
    assert result["clientId"] == first
    assert result["signingKeyIds"] == [old_sig["kid"], new_sig["kid"]]
    assert result["encryptionKeyIds"] == [new_enc["kid"], old_enc["kid"]]  # newest first

    again = _cli(app, "partners", "keys", "add", "wijkteam-x", "--jwks",
                 _jwks(tmp_path, "again.json", new_sig))  # fmt: skip
    assert again.exit_code != 0 and "registered already" in again.output

    with db.transaction() as session:  # a second client: --client must say which
        add_client(
            session, org_id="wijkteam-x", signing_keys=[{**public_of(new_key()), "use": "sig"}],
            scopes=("signals:write",), require_dpop=False, actor=ADMIN,
        )  # fmt: skip
    ambiguous = _cli(app, "partners", "keys", "add", "wijkteam-x", "--jwks",
                     _jwks(tmp_path, "third.json", public_of(new_key())))  # fmt: skip
    assert ambiguous.exit_code != 0 and "--client" in ambiguous.output

    for kid in (old_sig["kid"], old_enc["kid"]):
        removed = _cli(app, "partners", "keys", "remove", "wijkteam-x", "--kid", kid, "--json")
        assert removed.exit_code == 0, removed.output
    last = _cli(app, "partners", "keys", "remove", "wijkteam-x", "--kid", new_enc["kid"])
    assert last.exit_code != 0 and "last encryption key" in last.output
    with db.session() as session:
        (org,) = [o for o in list_organisations(session) if o["id"] == "wijkteam-x"]
        actions = list(
            session.execute(
                select(AuditEntryRow.action).where(AuditEntryRow.action.like("partner.keys.%"))
            ).scalars()
        )
    assert org["encryptionKeyIds"] == [new_enc["kid"]]
    assert actions == ["partner.keys.add", "partner.keys.remove", "partner.keys.remove"]
