"""`ketenpoort demo`: build a fresh instance under `var/demo/`, start the gateway, and
let five synthetic partners use it through the partner client library over HTTP.

Everything a real deployment does happens here for real: keys in a key store, partners
registered with their public keys, private_key_jwt + DPoP tokens, JWE payloads,
pseudonyms, matching, the audit log with signed checkpoints, and partners verifying it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests

from gateway.actors import cli_actor
from gateway.bootstrap import initialise
from gateway.client import PartnerClient
from gateway.client.cli import generate_partner_keys
from gateway.config import Settings
from gateway.db import Database
from gateway.demo.people import Person, people
from gateway.errors import OperatorError
from gateway.keys import KeyStore, load_master_key
from gateway.partners.registry import BASE_SCOPES, add_client, add_organisation
from gateway.server import PortInUse, check_port_free
from gateway.users import accounts
from gateway.users.service import add_user

#: The meldpunt's case system; a log reviewer (`audit:read`) would be a client of its own
#: (the policy's `separate_scopes`).
MELDPUNT_SCOPES = (
    "cases:write",
    "notifications:read",
    "directory:read",
    "signals:read",
    "figures:read",
)
#: The municipality's system also fetches the published figures (for the council).
MUNICIPALITY_SCOPES = (*BASE_SCOPES, "figures:read")

#: People for the web UI (name, role, organisation): the meldpunt's staff and a mentor
#: at the school (web intake); their demo passwords and TOTP secrets go to users.json.
DEMO_USERS: tuple[tuple[str, str, str | None], ...] = (
    ("c.jansen", "coordinator", None),
    ("m.bakker", "coordinator", None),
    ("p.visser", "privacy-officer", None),
    ("l.smit", "professional", "roc-van-twente"),
)

#: (organisation id, display name, kind)
PARTNERS = (
    ("politie-oost-nederland", "Politie Oost-Nederland", "police"),
    ("ggz-twente", "GGZ Twente", "care"),
    ("jeugdhulp-twente", "Jeugdhulp Twente", "care"),
    ("roc-van-twente", "ROC van Twente", "education"),
    ("gemeente-enschede", "Gemeente Enschede", "municipality"),
)


def demo_password(name: str) -> str:
    """A published password for a demo user (never for a real instance)."""
    return f"demo-{name}-2026"


class DemoError(OperatorError):
    """The demo cannot run; the message says why (printed without a traceback)."""


@dataclass
class DemoInstance:
    directory: Path
    issuer: str
    settings: Settings
    env: dict[str, str]
    partner_dirs: dict[str, Path] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    users: list[dict[str, str]] = field(default_factory=list)


def _master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """`source var/demo/env` points a shell's `ketenpoort` at this instance (0600: the
    master key is in it) and puts this installation's `ketenpoort` on the PATH."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    path.write_text("# Ketenpoort demo instance: source this file\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def build(directory: Path, host: str, port: int) -> DemoInstance:
    """A clean instance: database, keys, policy, five partners and a meldpunt client."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    issuer = f"http://{host}:{port}"
    master = _master_key()
    (directory / "master-key").write_text(master + "\n")
    os.chmod(directory / "master-key", 0o600)
    env = {
        "KETENPOORT_DATABASE_URL": f"sqlite:///{(directory / 'ketenpoort.db').resolve()}",
        "KETENPOORT_KEYS_DIR": str((directory / "keys").resolve()),
        "KETENPOORT_ISSUER": issuer,
        "KETENPOORT_MASTER_KEY": master,
        "KETENPOORT_POLICY": os.environ.get(
            "KETENPOORT_POLICY", str(Path("policies/twente.yaml").resolve())
        ),
        "KETENPOORT_LOG_FORMAT": "json",
        "KETENPOORT_LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        database_url=env["KETENPOORT_DATABASE_URL"],
        keys_dir=Path(env["KETENPOORT_KEYS_DIR"]),
        policy=Path(env["KETENPOORT_POLICY"]),
        issuer=issuer,
        master_key=base64.urlsafe_b64decode(master + "="),
        log_level="WARNING",
    )
    initialise(settings)
    write_env_file(directory / "env", env)
    instance = DemoInstance(directory, issuer, settings, env)
    database = Database(settings.database_url)
    actor = cli_actor()
    try:
        registrations = [
            (*p, MUNICIPALITY_SCOPES if p[2] == "municipality" else None) for p in PARTNERS
        ] + [("meldpunt", "Meldpunt (casussysteem)", "meldpunt", MELDPUNT_SCOPES)]
        for org_id, name, kind, scopes in registrations:
            folder = directory / "partners" / org_id
            paths = generate_partner_keys(folder)
            public = json.loads(paths["public"].read_text())["keys"]
            with database.transaction() as session:
                if kind != "meldpunt":
                    add_organisation(
                        session,
                        org_id=org_id,
                        name=name,
                        kind=kind,
                        encryption_keys=[k for k in public if k["use"] == "enc"],
                        actor=actor,
                    )
                client = add_client(
                    session,
                    org_id=org_id,
                    signing_keys=[k for k in public if k["use"] == "sig"],
                    scopes=scopes or BASE_SCOPES,
                    require_dpop=False,
                    actor=actor,
                )
                instance.client_ids[org_id] = client.client_id
            instance.partner_dirs[org_id] = folder
            (folder / "ketenpoort-partner.json").write_text(
                json.dumps(
                    {
                        "issuer": issuer,
                        "client_id": instance.client_ids[org_id],
                        "signing_key": str(paths["signing"].resolve()),
                        "encryption_key": str(paths["encryption"].resolve()),
                        "state": str((folder / "state.json").resolve()),
                    },
                    indent=2,
                )
            )
        with database.transaction() as session:
            keys = KeyStore(
                settings.keys_dir,
                load_master_key(settings.keys_dir, settings.master_key, create=False),
            )
            created = []
            for name, role, organisation in DEMO_USERS:
                user = add_user(
                    session, keys, name=name, role=role, actor=actor, organisation=organisation
                )
                row = accounts.get_user(session, user.id)
                assert row is not None
                password = demo_password(name)
                accounts.set_known_password(
                    session, row, password, now=datetime.now(UTC), actor=actor
                )
                created.append(
                    {
                        "name": name,
                        "role": role,
                        **({"organisation": organisation} if organisation else {}),
                        "password": password,
                        "totpSecret": user.totp_secret,
                        "totpUri": user.as_json()["totpUri"],
                    }
                )
        instance.users = created
        users_file = directory / "users.json"
        users_file.write_text(json.dumps(created, indent=2))
        os.chmod(users_file, 0o600)
    finally:
        database.dispose()
    return instance


def start_server(instance: DemoInstance, host: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **instance.env}
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "gateway", "serve", "--host", host, "--port", str(port)],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the gateway stopped while starting (exit {process.returncode})")
        try:
            if requests.get(f"{instance.issuer}/readyz", timeout=1).status_code == 200:
                return process
        except requests.RequestException:  # refused, or slow to answer while starting
            pass
        time.sleep(0.2)
    process.terminate()
    raise DemoError("the gateway did not become ready within 60 seconds")


def client_for(instance: DemoInstance, org_id: str) -> PartnerClient:
    folder = instance.partner_dirs[org_id]
    return PartnerClient(
        instance.issuer,
        instance.client_ids[org_id],
        signing_key=folder / "signing.jwk.json",
        encryption_key=folder / "encryption.jwk.json",
        state_path=folder / "state.json",
    )


#: What a partner knows of the person it reports: everything (with the BSN), the name
#: and date of birth only, or the name only (a pupil's birth date the school did not
#: have at hand: that signal can only be a possible match, which the coordinator reviews).
Knows = Literal["all", "name+dob", "names"]

#: Who reports whom: (person index, organisation, category, what it knows). People 0-4
#: and 6 are reported by several partners (matches); the rest by one.
SCENARIO: tuple[tuple[int, str, str, Knows], ...] = (
    (0, "politie-oost-nederland", "possible-victim", "all"),
    (0, "jeugdhulp-twente", "concern", "all"),
    (0, "roc-van-twente", "concern", "name+dob"),  # the school has no BSN
    (1, "ggz-twente", "possible-victim", "all"),
    (1, "gemeente-enschede", "concern", "all"),
    (2, "politie-oost-nederland", "possible-perpetrator", "all"),
    (2, "gemeente-enschede", "possible-perpetrator", "all"),
    (3, "roc-van-twente", "concern", "name+dob"),
    (3, "jeugdhulp-twente", "concern", "name+dob"),
    (4, "ggz-twente", "concern", "all"),
    (4, "politie-oost-nederland", "possible-victim", "all"),
    (4, "ggz-twente", "concern", "all"),  # a repeat by the same organisation: noted, not matched
    (6, "roc-van-twente", "concern", "names"),  # a possible match with GGZ's signal below
)


def _subject(person: Person, knows: Knows) -> dict[str, str]:
    subject = person.subject(with_bsn=knows == "all")
    if knows == "names":
        del subject["dateOfBirth"]
    return subject


def run_scenario(instance: DemoInstance, crowd: list[Person]) -> dict[str, Any]:
    clients = {org: client_for(instance, org) for org, _, _ in PARTNERS}
    submitted: list[tuple[str, str]] = []
    plan = list(SCENARIO)
    organisations = [p[0] for p in PARTNERS]
    for n, person_index in enumerate(range(5, len(crowd))):
        org = organisations[n % len(organisations)]
        category = "concern" if org == "roc-van-twente" else "possible-victim"
        plan.append((person_index, org, category, "name+dob" if n % 3 == 0 else "all"))
    by_person: dict[int, list[tuple[str, Knows]]] = {}
    for index, org, _category, knows in plan:
        by_person.setdefault(index, []).append((org, knows))
    # someone only the police reported (with BSN): the school's professional can file
    # about them on /intake, and the coordinator sees a new match
    police_only = [
        i for i, seen in sorted(by_person.items()) if seen == [("politie-oost-nederland", "all")]
    ]
    for n, (index, org, category, knows) in enumerate(plan):
        person = crowd[index]
        prefix = org.split("-")[0][:4].upper()
        created = clients[org].submit_signal(
            f"{prefix}-2026-{1000 + n}",
            category,
            _subject(person, knows),
            {"summary": f"Demo-melding {n}: zorgen over mogelijke uitbuiting.", "contact": org},
        )
        submitted.append((org, created["id"]))
    # one partner withdraws a signal it sent in error
    withdrawn_org, withdrawn_id = submitted[-1]
    clients[withdrawn_org].withdraw(withdrawn_id)
    meldpunt = client_for(instance, "meldpunt")
    matches = list(meldpunt.matches())
    coordinator = meldpunt.notifications()
    partner_notifications = sum(len(c.notifications()) for c in clients.values())
    verified = {org: client.verify(wait_seconds=15).as_json() for org, client in clients.items()}
    checkpoint = meldpunt.checkpoint()
    return {
        "signals": len(submitted),
        "withdrawn": 1,
        "matches": len(matches),
        "crossPartnerMatches": sum(
            1 for m in matches if len({s["organisation"] for s in m["signals"]}) > 1
        ),
        "coordinatorNotifications": len(coordinator),
        "partnerNotifications": partner_notifications,
        "auditTreeSize": checkpoint.size,
        "checkpointVerified": all(v["checkpointVerified"] for v in verified.values()),
        "receiptsVerified": sum(v["receiptsVerified"] for v in verified.values()),
        "policeOnlyPerson": crowd[police_only[0]].subject() if police_only else None,
    }


def summary_text(instance: DemoInstance, summary: dict[str, Any]) -> str:
    police = instance.partner_dirs["politie-oost-nederland"] / "ketenpoort-partner.json"
    meldpunt = instance.partner_dirs["meldpunt"] / "ketenpoort-partner.json"
    env_file = instance.directory / "env"
    users = "\n".join(
        f"  {u['name']:<10} {u['role']:<16} password {u['password']:<24} TOTP secret "
        f'{u["totpSecret"]}\n    code now: .venv/bin/python -c "import pyotp; '
        f"print(pyotp.TOTP('{u['totpSecret']}').now())\""
        + (f"\n    of {u['organisation']}: files signals at /intake" if "organisation" in u else "")
        for u in instance.users
    )
    person = summary.get("policeOnlyPerson")
    walk_in = (
        "\nA person only the police reported (synthetic): "
        + ", ".join(f"{k} {v}" for k, v in person.items())
        + ".\nFile a signal about them at /intake as the professional, and the coordinator"
        " sees a new match.\n"
        if person
        else ""
    )
    return f"""
Ketenpoort demo is running at {instance.issuer}

  signals submitted        {summary["signals"]} by 5 partners ({summary["withdrawn"]} withdrawn)
  matches                  {summary["matches"]} ({summary["crossPartnerMatches"]} across partners)
  notifications            {summary["coordinatorNotifications"]} for the coordinator, \
{summary["partnerNotifications"]} for partners (the policy tells partners nothing)
  audit log                {summary["auditTreeSize"]} entries; checkpoint verified by every \
partner: {"yes" if summary["checkpointVerified"] else "NO"}; \
{summary["receiptsVerified"]} receipts proven included

Open:
  {instance.issuer}/docs               the API, readable offline
  {instance.issuer}/v1/openapi.json    OpenAPI 3.1
  {instance.issuer}/healthz            liveness
  {instance.issuer}/readyz             readiness (database, keys, policy)
  {instance.issuer}/metrics            Prometheus metrics

Try next, in another terminal: `source {env_file}` puts `ketenpoort` on the PATH
and points it at this instance (database, key store, issuer), then:
  ketenpoort partner --config {meldpunt} matches
  ketenpoort partner --config {meldpunt} notifications --from-start
  ketenpoort partner --config {police} verify
  ketenpoort partner --config {police} check   # the conformance checklist
  ketenpoort audit verify

Sign in at {instance.issuer}/login (demo passwords, already changed; the TOTP code
comes from an authenticator app with the secret, or from the command shown):
{users}
{walk_in}
Instance files are in {instance.directory}/ (a second run starts clean). Ctrl-C stops.
"""


def _stop_on_sigterm() -> None:
    """SIGTERM and SIGINT stop the demo like Ctrl-C does, so the gateway it started stops
    too. SIGINT is set here as well: a demo started in the background of a script (`make
    run &`) inherits it ignored, and `kill -INT` would otherwise do nothing."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (tests): nothing to do
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, interrupt)


def run_demo(directory: Path, host: str, port: int, *, serve: bool = True) -> dict[str, Any]:
    try:
        check_port_free(host, port)
    except PortInUse as exc:
        raise DemoError(f"{exc} (is a demo still running?)") from None
    _stop_on_sigterm()
    instance = build(directory, host, port)
    process = start_server(instance, host, port)
    try:
        summary = run_scenario(instance, people(30))
        # Ctrl-C or SIGTERM from the summary on is a normal stop (exit 0); the signal
        # may land while the summary is still being written, so that is inside too.
        with contextlib.suppress(KeyboardInterrupt):
            print(summary_text(instance, summary), flush=True)
            if serve:
                process.wait()
        return summary
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
