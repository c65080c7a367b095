"""`PartnerClient`: what a partner's case system needs to talk to Ketenpoort.

It discovers the server (RFC 8414), authenticates with private_key_jwt and DPoP, caches
and renews access tokens, chooses payload recipients from the directory and the policy,
encrypts the payload, submits with an idempotency key, retries what is safe to retry,
and acts as a witness of the audit log.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.exceptions import ChunkedEncodingError

from gateway.audit.note import Checkpoint as SignedCheckpoint
from gateway.client.auth import client_assertion, dpop_proof, load_private_key
from gateway.client.blind import BlindKeys
from gateway.client.errors import (
    ApiError,
    DecryptionError,
    OAuthError,
    TransportError,
    WitnessError,
)
from gateway.client.state import ClientState, Receipt
from gateway.client.witness import (
    WitnessReport,
    check_growth,
    check_inclusion,
    keep,
    open_signed_checkpoint,
    rotation_path,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RENEW_MARGIN_SECONDS = 30


def _load_jwk(value: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    data: dict[str, Any] = json.loads(Path(value).read_text())
    if "keys" in data:  # a JWKS with one private key
        keys = [k for k in data["keys"] if "d" in k]
        if len(keys) != 1:
            raise ValueError(f"{value}: expected exactly one private key")
        return dict(keys[0])
    return data


@dataclass
class _Token:
    value: str
    token_type: str
    expires_at: float


def _cause(error: Exception | None) -> str:
    """The reason a request failed, in words an integrator can act on."""
    if isinstance(error, requests.Timeout):
        return "no answer in time (is the gateway overloaded or the address wrong?)"
    if isinstance(error, requests.ConnectionError):
        return "could not connect (is the gateway running at this address?)"
    return "the gateway kept answering that it is unavailable"


#: Problems that mean the payload was encrypted from an out-of-date directory copy.
_STALE_KEY_PROBLEMS = frozenset({"unknown-recipient-key", "undecryptable-envelope"})


class PartnerClient:
    """A partner system's connection to one Ketenpoort gateway.

    `clock` times token renewal and `verify()`'s wait (tests advance it); assertions
    and DPoP proofs carry the real time, as the server checks them against its own.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        signing_key: Mapping[str, Any] | str | Path,
        encryption_key: Mapping[str, Any] | str | Path | None = None,
        *,
        dpop: bool = True,
        scope: str | None = None,
        state_path: str | Path | None = None,
        http: requests.Session | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        blind: bool = False,
        directory_max_age: float = 300.0,
        previous_encryption_keys: Sequence[Mapping[str, Any] | str | Path] = (),
    ) -> None:
        self.issuer = issuer.rstrip("/")
        #: Blind submission: identifiers never leave this system (gateway.client.blind).
        self.blind = blind
        self._blind_keys = BlindKeys(lambda *args, **kwargs: self.request(*args, **kwargs))
        self.client_id = client_id
        self._signing_jwk = _load_jwk(signing_key)
        self._signing_key = load_private_key(self._signing_jwk)
        self._encryption_jwk = _load_jwk(encryption_key) if encryption_key is not None else None
        #: Encryption keys from before a rotation (`ketenpoort partner keys rotate`):
        #: shares encrypted to them still open.
        self._previous_encryption_jwks = [_load_jwk(k) for k in previous_encryption_keys]
        self.dpop = dpop
        self.scope = scope
        self.state_path = Path(state_path) if state_path is not None else None
        self.state = ClientState.load(self.state_path)
        self.http = http or requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        self._token: _Token | None = None
        self._dpop_nonce: str | None = None
        #: The directory copy payloads are encrypted from, and when it was read; read
        #: again when older than `directory_max_age`, or when the gateway names a key
        #: of it unknown (a rotation; see `submit_signal`).
        self.directory_max_age = directory_max_age
        self._directory: tuple[float, list[dict[str, Any]]] | None = None

    # --- discovery and tokens -------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The server's RFC 8414 metadata, fetched once."""
        if self._metadata is None:
            response = self._send("GET", f"{self.issuer}/.well-known/oauth-authorization-server")
            if response.status_code != 200:
                raise ApiError(response.status_code, _json_or_none(response))
            self._metadata = response.json()
        return self._metadata

    def access_token(self) -> str:
        """A valid access token, renewed shortly before it expires."""
        return self._current_token().value

    def _current_token(self) -> _Token:
        if self._token is None or self._token.expires_at - RENEW_MARGIN_SECONDS <= self._clock():
            self._token = self._fetch_token()
        return self._token

    def _fetch_token(self) -> _Token:
        endpoint = self.metadata()["token_endpoint"]

        def fresh_credentials(kwargs: dict[str, Any]) -> None:
            # every attempt signs anew: the server remembers an assertion's and a
            # proof's jti, so a retry after a lost response must not reuse them
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(
                    self._signing_key, self._signing_jwk, self.client_id, self.issuer
                ),
            }
            if self.scope:
                form["scope"] = self.scope
            kwargs["data"] = form
            if self.dpop:
                kwargs["headers"]["DPoP"] = self._proof("POST", endpoint)

        for _ in range(2):  # a second round only to answer a DPoP nonce challenge
            headers = {"Accept": "application/json"}
            response = self._send("POST", endpoint, before_each=fresh_credentials, headers=headers)
            self._remember_nonce(response)
            body = _json_or_none(response) or {}
            if response.status_code == 200:
                return _Token(
                    value=body["access_token"],
                    token_type=body.get("token_type", "Bearer"),
                    expires_at=self._clock() + float(body.get("expires_in", 300)),
                )
            if body.get("error") != "use_dpop_nonce":
                break
        raise OAuthError(
            response.status_code,
            body.get("error", "server_error"),
            body.get("error_description", ""),
        )

    def _proof(self, method: str, url: str, access_token: str | None = None) -> str:
        return dpop_proof(
            self._signing_key,
            self._signing_jwk,
            method,
            url,
            access_token=access_token,
            nonce=self._dpop_nonce,
        )

    def _remember_nonce(self, response: requests.Response) -> None:
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self._dpop_nonce = nonce

    # --- transport ------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        before_each: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP exchange with retries on network errors, 429 and 5xx-unavailable."""
        last_error: Exception | None = None
        for attempt in range(self.max_attempts):
            if before_each is not None:
                before_each(kwargs)  # fresh signatures for this attempt
            try:
                response = self.http.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                # ChunkedEncodingError: the connection broke mid-answer (a killed worker)
                last_error = exc
                self._sleep(self._delay(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < self.max_attempts:
                self._sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            return response
        raise TransportError(
            f"{method} {url} failed after {self.max_attempts} attempts: {_cause(last_error)}"
        ) from last_error

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_backoff * 3)
            except ValueError:
                pass
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """An authenticated call to `{issuer}/v1{path}`; raises `ApiError` on an error."""
        url = f"{self.issuer}/v1{path}"
        for renewal in range(2):
            token = self._current_token()
            sent = {"Accept": accept, **(headers or {})}
            if token.token_type.lower() == "dpop":
                sent["Authorization"] = f"DPoP {token.value}"
            else:
                sent["Authorization"] = f"Bearer {token.value}"
            kwargs: dict[str, Any] = {"headers": sent, "params": params}
            if json_body is not None:
                kwargs["data"] = json.dumps(json_body).encode()
                sent["Content-Type"] = "application/json"
            fresh_proof = None
            if token.token_type.lower() == "dpop":
                # every attempt needs a fresh proof: a DPoP proof's jti may be used once
                def fresh_proof(kwargs: dict[str, Any], value: str = token.value) -> None:
                    kwargs["headers"]["DPoP"] = self._proof(method, url, value)

            response = self._send(method, url, before_each=fresh_proof, **kwargs)
            self._remember_nonce(response)
            if response.status_code == 401 and renewal == 0:
                self._token = None  # expired or revoked early: renew once
                continue
            if response.status_code >= 400:
                retry_after = response.headers.get("Retry-After")
                raise ApiError(
                    response.status_code,
                    _json_or_none(response),
                    float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    # --- directory and policy -------------------------------------------------------

    def directory(self) -> list[dict[str, Any]]:
        """The directory as the gateway publishes it now (and kept for encrypting)."""
        organisations: list[dict[str, Any]] = self.request("GET", "/directory").json()[
            "organisations"
        ]
        self._directory = (self._clock(), organisations)
        return organisations

    def _kept_directory(self) -> list[dict[str, Any]]:
        kept = self._directory
        if kept is None or self._clock() - kept[0] > self.directory_max_age:
            return self.directory()
        return kept[1]

    def policy(self) -> dict[str, Any]:
        policy: dict[str, Any] = self.request("GET", "/policy").json()
        return policy

    def recipient_keys(self, category: str) -> list[dict[str, Any]]:
        """The current encryption keys of every recipient the policy requires."""
        categories = self.policy()["categories"]
        if category not in categories:
            raise ValueError(f"unknown category {category!r}; the policy has {sorted(categories)}")
        required = categories[category]["requiredRecipients"]
        by_id = {org["id"]: org for org in self._kept_directory()}
        keys: list[dict[str, Any]] = []
        for org_id in required:
            if org_id not in by_id:
                raise ValueError(f"recipient {org_id!r} is not in the directory")
            keys.extend(by_id[org_id]["encryptionKeys"]["keys"])
        return keys

    # --- signals ----------------------------------------------------------------------

    def submit_signal(
        self,
        reference: str,
        category: str,
        subject: Mapping[str, str],
        payload: bytes | str | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Encrypt `payload` for the policy's recipients and submit the signal once.

        The recipients' keys come from a directory copy at most `directory_max_age`
        old. When the gateway refuses the envelope because it names a key it does not
        know (a recipient rotated its key since the copy was read), the directory is
        read again and the payload encrypted anew, once: partners follow rotations. A
        blind client whose `matchKeys` name an OPRF key the gateway no longer holds
        (409 `oprf-key-changed`) evaluates them again, once.
        A refused request stored nothing, so the same idempotency key is used again.
        """
        from gateway.crypto.jwe import encrypt_for_recipients

        if isinstance(payload, Mapping):
            plaintext = json.dumps(payload, ensure_ascii=False).encode()
        elif isinstance(payload, str):
            plaintext = payload.encode()
        else:
            plaintext = payload
        body: dict[str, Any] = {"reference": reference, "category": category}
        if self.blind:
            body["matchKeys"] = self._blind_keys.match_keys(subject)
        else:
            body["subject"] = dict(subject)
        key = idempotency_key or str(uuid.uuid4())
        retried: set[str] = set()  # each kind of rotation is followed once
        while True:
            body["payload"] = encrypt_for_recipients(plaintext, self.recipient_keys(category))
            try:
                created: dict[str, Any] = self.request(
                    "POST", "/signals", json_body=body, headers={"Idempotency-Key": key}
                ).json()
            except ApiError as exc:
                if exc.slug in _STALE_KEY_PROBLEMS and "directory" not in retried:
                    retried.add("directory")
                    self._directory = None  # a rotation: read the directory again
                    continue
                if exc.slug == "oprf-key-changed" and self.blind and "oprf" not in retried:
                    retried.add("oprf")  # a pseudonym rotation: evaluate again
                    body["matchKeys"] = self._blind_keys.match_keys(subject)
                    continue
                raise
            break
        self._keep_receipt(created, "signal.create")
        return created

    def signal(self, signal_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/signals/{signal_id}").json()
        return found

    def _pages(self, path: str, limit: int) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paged collection, page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = self.request("GET", path, params=params).json()
            yield from page["items"]
            cursor = page.get("next")
            if not cursor:
                return

    def signals(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """This organisation's signals."""
        return self._pages("/signals", limit)

    def withdraw(self, signal_id: str) -> dict[str, Any]:
        withdrawn: dict[str, Any] = self.request("DELETE", f"/signals/{signal_id}").json()
        self._keep_receipt(withdrawn, "signal.withdraw")
        return withdrawn

    def matches(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Matches across partners (the meldpunt's own systems, scope `cases:write`)."""
        return self._pages("/matches", limit)

    def shares(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Shares with this organisation, each signal's payload opened with this partner's
        encryption key: items `{"id", "caseId", "purpose", "createdAt", "signals": [{"id",
        "category", "content"}]}` (`content` the payload's UTF-8 text). Raises
        `DecryptionError` for a payload that is not for this partner's key."""
        for share in self._pages("/shares", limit):
            signals = [
                {
                    "id": signal["id"],
                    "category": signal["category"],
                    "content": self.decrypt(signal["payload"]).decode("utf-8", "replace"),
                }
                for signal in share["signals"]
            ]
            yield {**share, "signals": signals}

    def notifications(self, limit: int = 100, *, from_start: bool = False) -> list[dict[str, Any]]:
        """New notifications since the last call; the feed position is kept in the state
        file (the gateway's `next` always resumes after the last item it gave).
        `from_start` reads the whole feed again and resumes from its end."""
        found: list[dict[str, Any]] = []
        if from_start:
            self.state.notifications_cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if self.state.notifications_cursor:
                params["after"] = self.state.notifications_cursor
            page = self.request("GET", "/notifications", params=params).json()
            found.extend(page["items"])
            if page.get("next"):
                self.state.notifications_cursor = page["next"]
                self.state.save(self.state_path)
            if not page.get("next") or len(page["items"]) < limit:
                return found

    # --- the audit log, witnessed ------------------------------------------------------

    def log_key(self) -> str:
        """The log's verifier key, pinned on first use and kept in the state file."""
        if self.state.log_key is None:
            self.state.log_key = self.request("GET", "/audit/key", accept="text/plain").text
            self.state.save(self.state_path)
        return self.state.log_key

    def checkpoint(self) -> SignedCheckpoint:
        """The latest checkpoint, its signature checked against the pinned key."""
        note = self.request("GET", "/audit/checkpoint", accept="text/plain").text
        return self._open_checkpoint(note)

    def _open_checkpoint(self, note: str) -> SignedCheckpoint:
        """`note` opened with the pinned key; when the gateway rotated its checkpoint key,
        the key chain is followed once (`follow_rotation`) and the note opened again."""
        try:
            return open_signed_checkpoint(note, self.log_key())
        except WitnessError:
            if not self.follow_rotation():
                raise
            return open_signed_checkpoint(note, self.log_key())

    def follow_rotation(self) -> bool:
        """Follow the log's checkpoint key chain from the pinned key: each new key only
        through its first checkpoint co-signed by the key before it, which must extend the
        log this partner saw; then pin the new key (kept in the state file). False when the
        gateway still signs with the pinned key; `WitnessError` when no chain leads on."""
        current = self.request("GET", "/audit/key", accept="text/plain").text
        if current.strip() == self.log_key().strip():
            return False
        body = self.request("GET", "/audit/key-chain").json()
        for link in rotation_path(self.log_key(), body):
            assert link.note is not None
            checkpoint = open_signed_checkpoint(link.note, link.key.text())
            previous = self.state.checkpoint
            if previous is None or checkpoint.size >= previous.size:
                check_growth(self.state, checkpoint, self._consistency_proof(checkpoint))
                keep(self.state, link.note, checkpoint)
            self.state.log_key = link.key.text() + "\n"
            self.state.save(self.state_path)
        return True

    def _consistency_proof(self, checkpoint: SignedCheckpoint) -> list[str] | None:
        """The proof that `checkpoint` extends the one this partner kept, when it is
        larger; None when there is nothing to prove (first sight, or the same size), so
        `check_growth` judges both the key chain and `verify` by one rule."""
        previous = self.state.checkpoint
        if previous is None or checkpoint.size <= previous.size:
            return None
        hashes: list[str] = self.request(
            "GET",
            "/audit/proofs/consistency",
            params={"first": previous.size, "second": checkpoint.size},
        ).json()["hashes"]
        return hashes

    def verify(self, *, wait_seconds: float = 10.0) -> WitnessReport:
        """Prove every receipt is in the log and the log only grew; raise `WitnessError`.

        Entries are numbered by the gateway's sequencer within a second or so; a receipt
        not yet in a checkpoint is waited for up to `wait_seconds`, then counted as a
        lost entry.
        """
        deadline = self._clock() + wait_seconds
        # "Consistent with previous" reports on the checkpoint kept before this call (a
        # first look has none); a wait below also checks each newer checkpoint against
        # the one this call saw first, which is no earlier look.
        first_look = self.state.checkpoint is None
        while True:
            note = self.request("GET", "/audit/checkpoint", accept="text/plain").text
            checkpoint = self._open_checkpoint(note)
            consistent = check_growth(self.state, checkpoint, self._consistency_proof(checkpoint))
            keep(self.state, note, checkpoint)
            pending = 0
            for receipt in self.state.receipts:
                if receipt.index is not None and receipt.index < checkpoint.size:
                    continue  # proven before; consistency carries it forward
                try:
                    found = self.request(
                        "GET",
                        "/audit/proofs/inclusion",
                        params={"leafHash": receipt.leaf_hash, "treeSize": checkpoint.size},
                    ).json()
                except ApiError as exc:
                    if exc.slug == "leaf-not-sequenced":
                        pending += 1
                        continue
                    if exc.status == 404:
                        raise WitnessError(
                            f"receipt {receipt.leaf_hash} is missing from the log: "
                            "an entry was dropped"
                        ) from exc
                    raise
                receipt.index = check_inclusion(receipt.leaf_hash, checkpoint, found)
            self.state.save(self.state_path)
            if pending == 0 or self._clock() >= deadline:
                break
            self._sleep(0.5)
        if pending:
            raise WitnessError(f"{pending} receipt(s) not in the log after {wait_seconds} s")
        return WitnessReport(
            checkpoint_size=checkpoint.size,
            checkpoint_verified=True,
            consistent_with_previous=None if first_look else consistent,
            receipts_verified=sum(1 for r in self.state.receipts if r.index is not None),
            receipts_pending=pending,
        )

    def encryption_key_id(self) -> str | None:
        """The `kid` of this client's encryption key, if it was given one."""
        return None if self._encryption_jwk is None else self._encryption_jwk.get("kid")

    def decrypt(self, envelope: Mapping[str, Any]) -> bytes:
        """Open a payload shared with this partner, with its own encryption key."""
        from gateway.crypto.jwe import JweError, decrypt_for_recipient

        if self._encryption_jwk is None:
            raise ValueError("this client was created without an encryption key")
        for jwk in (self._encryption_jwk, *self._previous_encryption_jwks):
            try:
                plaintext: bytes = decrypt_for_recipient(dict(envelope), jwk)
            except JweError:
                continue
            return plaintext
        raise DecryptionError(
            "this payload was not encrypted for this partner's key, or was altered"
        )

    def _keep_receipt(self, body: Mapping[str, Any], action: str) -> None:
        receipt = body.get("receipt") or {}
        if "leafHash" in receipt:
            self.state.receipts.append(
                Receipt(leaf_hash=receipt["leafHash"], signal_id=body.get("id"), action=action)
            )
            self.state.save(self.state_path)


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
