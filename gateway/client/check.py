"""`ketenpoort partner check`: a partner integrator's conformance checklist.

Runs the exchanges a partner system makes, in order, against a live gateway, and says
for each whether it worked and, if not, what to fix. Later checks that need an earlier
one (a token for everything under /v1) are skipped when it failed, so the first
failure is the one to fix. The test signal is sent only where the policy reserves a
category for it (`test: true` in `GET /v1/policy`: checked and audited like any other
signal, then erased before the answer, never matched or shared); everything else only
reads.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.client.client import PartnerClient
from gateway.client.errors import ApiError, KetenpoortError, OAuthError, WitnessError

#: The gateway accepts assertions and DPoP proofs up to this many seconds ahead.
CLOCK_SKEW_SECONDS = 60
#: A person who does not exist: a valid 11-test number no one is given in the demo.
TEST_SUBJECT = {"bsn": "999990019", "familyName": "Conformiteit", "dateOfBirth": "2000-01-01"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str
    fix: str | None = None


class _Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class _Skipped(Exception):
    """A check that does not apply here."""


def _claims(token: str) -> dict[str, Any]:
    """The access token's claims, unverified: only to tell the integrator what it holds."""
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _explain(exc: Exception) -> _Failed:
    if isinstance(exc, OAuthError) and exc.error == "invalid_client":
        return _Failed(
            str(exc),
            "the gateway does not accept this client's key: check client_id and that the "
            "meldpunt registered your public.jwks.json (its `use: sig` key)",
        )
    if isinstance(exc, ApiError) and exc.status == 403:
        return _Failed(str(exc), "ask the meldpunt for the scope this step needs")
    return _Failed(str(exc), "see the message; rerun with the gateway's request id in hand")


class Checklist:
    """The checks in order; each adds one `Check`."""

    def __init__(self, client: PartnerClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.results: list[Check] = []
        self.token: str | None = None
        self.organisation: str | None = None
        self.policy: dict[str, Any] = {}
        self.directory: list[dict[str, Any]] = []
        self.test_signal_id: str | None = None
        self.test_receipt: str | None = None

    def run(self) -> list[Check]:
        steps: list[tuple[str, Callable[[], str], bool]] = [
            ("discovery", self.discovery, False),
            ("clock", self.clock_skew, False),
            ("token", self.access_token, False),
            ("directory", self.read_directory, True),
            ("policy", self.read_policy, True),
            ("encryption", self.encryption, True),
            ("test signal", self.test_signal, True),
            ("notifications", self.notifications, True),
            ("receipts", self.receipts, True),
        ]
        for name, step, needs_token in steps:
            if self.results and self.results[0].status == "fail":
                self.results.append(Check(name, "skip", "the gateway did not answer (see above)"))
                continue
            if needs_token and self.token is None:
                self.results.append(Check(name, "skip", "no access token (see above)"))
                continue
            try:
                self.results.append(Check(name, "pass", step()))
            except _Failed as failed:
                self.results.append(Check(name, "fail", failed.detail, failed.fix))
            except KetenpoortError as exc:
                explained = _explain(exc)
                self.results.append(Check(name, "fail", explained.detail, explained.fix))
            except _Skipped as skipped:
                self.results.append(Check(name, "skip", str(skipped)))
        return self.results

    def discovery(self) -> str:
        try:
            metadata = self.client.metadata()
        except KetenpoortError as exc:
            raise _Failed(
                str(exc), "check `issuer` in your configuration (the gateway's base URL)"
            ) from None
        missing = [k for k in ("token_endpoint", "jwks_uri") if k not in metadata]
        if missing:
            raise _Failed(f"metadata lacks {', '.join(missing)}", "this is not a Ketenpoort issuer")
        return f"token endpoint {metadata['token_endpoint']}"

    def clock_skew(self) -> str:
        import requests

        try:
            response = self.client.http.get(f"{self.client.issuer}/healthz", timeout=10)
        except requests.RequestException as exc:
            raise _Failed(
                f"GET /healthz failed: {type(exc).__name__}",
                "check that the gateway is reachable from here (proxy, firewall)",
            ) from None
        date = response.headers.get("Date")
        if date is None:
            raise _Skipped("the gateway sent no Date header")
        skew = self.clock() - parsedate_to_datetime(date).timestamp()
        if abs(skew) > CLOCK_SKEW_SECONDS - 5:
            raise _Failed(
                f"your clock is {skew:+.0f} s off the gateway's",
                f"synchronise with NTP: assertions and DPoP proofs more than "
                f"{CLOCK_SKEW_SECONDS} s off are refused",
            )
        return f"{skew:+.1f} s off the gateway's clock (±{CLOCK_SKEW_SECONDS} s accepted)"

    def access_token(self) -> str:
        try:
            token = self.client.access_token()
        except KetenpoortError as exc:
            raise _explain(exc) from None
        claims = _claims(token)
        self.token = token
        self.organisation = claims.get("org")
        bound = "DPoP-bound" if "cnf" in claims else "bearer (DPoP off)"
        return f"{bound} token for {claims.get('org')}, scopes: {claims.get('scope')}"

    def read_directory(self) -> str:
        self.directory = self.client.directory()
        own = next((o for o in self.directory if o["id"] == self.organisation), None)
        if own is None:
            raise _Failed(
                f"{self.organisation} is not in the directory",
                "ask the meldpunt to register your organisation with its encryption key",
            )
        kids = {k.get("kid") for k in own["encryptionKeys"]["keys"]}
        configured = self.client.encryption_key_id()
        if configured is not None and configured not in kids:
            raise _Failed(
                f"your encryption key {configured} is not among your published keys",
                "send the meldpunt your current public.jwks.json (the `use: enc` key), or "
                "configure the encryption key you registered",
            )
        return f"{len(self.directory)} organisations; yours publishes {len(kids)} encryption key(s)"

    def read_policy(self) -> str:
        self.policy = self.client.policy()
        return f"policy {self.policy['id']} {self.policy['version']}: " + ", ".join(
            sorted(self.policy["categories"])
        )

    def encryption(self) -> str:
        from gateway.crypto.jwe import encrypt_for_recipients

        counts = []
        for category in sorted(self.policy["categories"]):
            try:
                keys = self.client.recipient_keys(category)
            except ValueError as exc:
                raise _Failed(str(exc), "the directory lacks a required recipient") from None
            encrypt_for_recipients(b"{}", keys)
            counts.append(f"{category} ({len(keys)} key(s))")
        return "a payload can be encrypted for every required recipient: " + ", ".join(counts)

    def test_signal(self) -> str:
        reserved = sorted(n for n, c in self.policy["categories"].items() if c.get("test"))
        if not reserved:
            raise _Skipped("the gateway's policy reserves no test category (`test: true`)")
        category = reserved[0]
        try:
            created = self.client.submit_signal(
                f"CHECK-{uuid.uuid4().hex[:8]}", category, TEST_SUBJECT, {"check": True}
            )
        except ApiError as exc:
            raise _signal_refused(exc, category) from None
        receipt = (created.get("receipt") or {}).get("leafHash")
        if not receipt:
            raise _Failed(
                "the gateway's answer carries no receipt",
                "every write answers with `receipt.leafHash`: report this to the meldpunt",
            )
        if created.get("status") != "erased":
            raise _Failed(
                f"the test signal was kept (status {created.get('status')!r})",
                "the gateway predates test categories: ask the meldpunt to upgrade it",
            )
        self.test_signal_id = str(created["id"])
        self.test_receipt = str(receipt)
        return (
            f"{category}: encrypted for every required recipient, accepted and erased at "
            f"once; receipt {receipt[:12]}… kept for the receipts check"
        )

    def notifications(self) -> str:
        notes = self.client.notifications()
        if self.test_signal_id and any(n.get("signalId") == self.test_signal_id for n in notes):
            raise _Failed(
                "a notification names the test signal",
                "a test signal must reach no one: report this to the meldpunt",
            )
        return f"the feed answers ({len(notes)} new)"

    def receipts(self) -> str:
        try:
            report = self.client.verify()
        except WitnessError as exc:
            raise _Failed(
                str(exc),
                "the log does not prove your receipts: keep the state file and report it "
                "to the meldpunt's privacy officer",
            ) from None
        detail = (
            f"checkpoint of {report.checkpoint_size} entries verified; "
            f"{report.receipts_verified} receipt(s) proven included"
        )
        if self.test_receipt is not None:
            found = next(
                (r for r in self.client.state.receipts if r.leaf_hash == self.test_receipt), None
            )
            if found is None or found.index is None:
                raise _Failed(
                    "the test signal's receipt is not proven in the log",
                    "rerun the check in a minute; if it stays, report it to the meldpunt",
                )
            detail += f", the test signal's at index {found.index}"
        return detail


def _signal_refused(exc: ApiError, category: str) -> _Failed:
    """What to fix when the gateway refused the test signal."""
    if exc.status == 403:
        return _Failed(
            str(exc),
            f"ask the meldpunt for the scope signals:write and to list your organisation "
            f"kind among the submitters of `{category}`",
        )
    if exc.slug in {"missing-recipient", "unknown-recipient-key", "undecryptable-envelope"}:
        return _Failed(
            str(exc),
            "encrypt the payload for every current key (GET /v1/directory) of every "
            "recipient the category requires (GET /v1/policy, requiredRecipients)",
        )
    return _explain(exc)


def as_json(results: list[Check]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def as_text(results: list[Check]) -> str:
    marks = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}
    lines = []
    for r in results:
        lines.append(f"{marks[r.status]}  {r.name:<14} {r.detail}")
        if r.fix:
            lines.append(f"      {'':<14} fix: {r.fix}")
    return "\n".join(lines)
