"""`ketenpoort partner check`: a partner integrator's conformance checklist.

Runs the exchanges a partner system makes, in order, against a live gateway, and says
for each whether it worked and, if not, what to fix. Later checks that need an earlier
one (a token for everything under /v1) are skipped when it failed, so the first
failure is the one to fix. The test signal is sent only where the policy reserves a
`test` category for it (never matched, erased at once); everything else only reads.
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
from gateway.client.errors import ApiError, KetenpoortError, OAuthError

#: The gateway accepts assertions and DPoP proofs up to this many seconds ahead.
CLOCK_SKEW_SECONDS = 60
TEST_CATEGORY = "test"
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
        response = self.client.http.get(f"{self.client.issuer}/healthz", timeout=10)
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
            counts.append(f"{category} ({len(keys)} keys)")
        return "a payload can be encrypted for every required recipient: " + ", ".join(counts)

    def test_signal(self) -> str:
        if TEST_CATEGORY not in self.policy["categories"]:
            raise _Skipped("the gateway's policy reserves no `test` category")
        created = self.client.submit_signal(
            f"CHECK-{uuid.uuid4().hex[:8]}", TEST_CATEGORY, TEST_SUBJECT, {"check": True}
        )
        self.client.withdraw(created["id"])
        return f"submitted and withdrew {created['id']} (receipt kept for the next check)"

    def notifications(self) -> str:
        count = len(self.client.notifications())
        return f"the feed answers ({count} new)"

    def receipts(self) -> str:
        report = self.client.verify()
        return (
            f"checkpoint of {report.checkpoint_size} entries verified; "
            f"{report.receipts_verified} receipt(s) proven included"
        )


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
