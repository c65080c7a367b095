"""`SignalService`: the one way to submit, withdraw, list and read signals.

The API views, the web intake and the CLI call it with an `Actor` and plain values; it
checks the input, asks the policy ONCE, does the work through `gateway.signals.service`
and writes the audit entry with the decision it got — in the caller's session: the
caller commits the signal and its entry together (a refusal is committed on its own,
see `gateway.policy.audited.refuse`). Raw identifiers live only in the call's memory:
they are turned into pseudonyms and dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.api.paging import CursorCodec, Page
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.errors import FieldError, InputErrors, InvalidInput, NotFound
from gateway.keys import KeyPurpose, KeyRecord, KeyStore
from gateway.keys.epochs import seal_payload
from gateway.policy.audited import record_decision, refuse
from gateway.policy.engine import Decision, PolicyEngine, Resource
from gateway.policy.schema import Category
from gateway.pseudonyms.blind_input import check_match_keys, move_to_current
from gateway.pseudonyms.detector import (
    has_name,
    personal_data_kind,
    recordable_uuid,
    safe_uuid,
    subject_name_parts,
)
from gateway.pseudonyms.errors import InvalidSubject
from gateway.pseudonyms.matchkeys import derive_linkage_keys
from gateway.pseudonyms.service import Pseudonymiser
from gateway.signals.directory import DirectoryCache, DirectoryView
from gateway.signals.envelope import (
    check_decryption,
    check_envelope,
    inspect_envelope,
    recipient_kids,
)
from gateway.signals.schemas import ReceiptOut, SignalOut
from gateway.signals.service import (
    NewSignal,
    Signal,
    create_signal,
    get_signal,
    list_signals,
    remember_response,
    signal_subject_refs,
    subject_refs,
    withdraw_signal,
)

MELDPUNT = "meldpunt"
NOT_OWN_SUBMISSION = "deny:not-own-submission"
#: The longest report text the web intake takes (its JWE stays well below the
#: envelope limit).
REPORT_MAX_CHARS = 20_000
IDEMPOTENCY_KEY_MAX = 128
#: The key-store label of the secret under which idempotency keys are stored (HMAC).
IDEMPOTENCY_SECRET_LABEL = "signals/idempotency-key/v1"  # noqa: S105 - a label
_PERSONAL_DATA = {
    "bsn": "a BSN",
    "date": "a date",
    "name": "the subject's name",
}


@dataclass(frozen=True)
class Submission:
    """A signal as a partner sends it (API field names in `subject`)."""

    reference: str
    category: str
    subject: Mapping[str, Any] | None
    payload: Mapping[str, Any]
    #: The caller's `Idempotency-Key`, as sent; stored only as a keyed hash.
    idempotency_key: str | None = None
    #: A digest of the request as sent (e.g. SHA-256 of the body), compared on a retry.
    request_digest: bytes | None = None
    #: Blind submission: `{family: element}` (base64url) instead of `subject`.
    match_keys: Mapping[str, Any] | None = None
    #: What the request's schema already refused (the API's `read_body`): reported with
    #: the service's own errors in one 400; a value refused there is not checked again.
    refused: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class Report:
    """A signal as a professional files it on the web: the report text in clear (sealed
    by `SignalService.submit_report`), the subject with the API's field names."""

    category: str
    subject: Mapping[str, Any] = field(repr=False)
    text: str = field(repr=False)
    #: The professional's own reference; empty: the gateway makes one (`WEB-…`).
    reference: str = ""


#: Letters only (no vowels, no digits): a made reference never looks like a name, a
#: date or a BSN to the personal-data detector.
_REFERENCE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


def web_reference() -> str:
    """A reference for a web-intake signal whose professional gave none."""
    return "WEB-" + "".join(secrets.choice(_REFERENCE_LETTERS) for _ in range(8))


def report_errors(text: str) -> list[FieldError]:
    if not text.strip():
        return [FieldError("/report", "The report text is required")]
    if len(text) > REPORT_MAX_CHARS:
        return [FieldError("/report", f"At most {REPORT_MAX_CHARS} characters")]
    return []


@dataclass(frozen=True)
class Submitted:
    signal: Signal
    #: The response body (JSON text): the first one again on an idempotent replay.
    body: str
    #: True when nothing was stored: an idempotent retry of an earlier submission.
    replay: bool


@dataclass(frozen=True)
class Withdrawn:
    signal: Signal
    body: str


def signal_out(signal: Signal, receipt: str | None = None) -> SignalOut:
    return SignalOut(
        id=signal.id,
        organisation=signal.organisation,
        reference=signal.reference,
        category=signal.category,
        status=signal.status,
        created_at=signal.created_at,
        expires_at=signal.expires_at,
        linkage_keys=list(signal.linkage_keys),
        receipt=ReceiptOut(leaf_hash=receipt) if receipt else None,
    )


def signal_json(signal: Signal, receipt: str | None = None) -> str:
    return signal_out(signal, receipt).model_dump_json(by_alias=True, exclude_none=True)


def _personal_data_detail(kind: str) -> str:
    return f"Looks like personal data ({_PERSONAL_DATA[kind]})"


def reference_errors(reference: str, names: frozenset[str]) -> list[FieldError]:
    if not 1 <= len(reference) <= 64:
        return [FieldError("/reference", "Must be 1 to 64 characters")]
    if not all(c.isprintable() for c in reference) or reference != reference.strip():
        return [FieldError("/reference", "Must be printable characters without edge spaces")]
    kind = personal_data_kind(reference, names)
    if kind is not None:
        return [
            FieldError(
                "/reference",
                _personal_data_detail(kind) + "; use your own report number",
            )
        ]
    return []


def _random_uuid(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def check_idempotency_key(key: str, names: frozenset[str]) -> None:
    """1-128 printable ASCII characters and no personal data (the key is kept, hashed)."""
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            "The Idempotency-Key header must be 1 to 128 printable ASCII characters.",
            errors=[FieldError("", "Invalid Idempotency-Key header", "Idempotency-Key")],
        )
    if _random_uuid(key) and not has_name(key, names):
        # What clients send (RFC 9562 version 4): its digits are random, so a BSN or date
        # shape in them is chance, not data; refusing it would fail ~3% of retries-safe
        # submissions. The key is stored only as a keyed hash and never logged.
        return
    kind = personal_data_kind(key, names)
    if kind is not None:
        raise InvalidInput(
            "The Idempotency-Key header looks like personal data; use a random value.",
            errors=[FieldError("", _personal_data_detail(kind), "Idempotency-Key")],
        )


@dataclass
class SignalService:
    """Submit, withdraw, list and read the caller organisation's signals."""

    engine: PolicyEngine
    keys: KeyStore
    directory: DirectoryCache
    #: Built on first use: building it unseals the pseudonym key.
    pseudonymiser: Callable[[], Pseudonymiser]
    #: The secret idempotency keys are hashed under (`KeyStore.derive_secret`).
    idempotency_secret: bytes
    #: The list's cursors, opaque to the partner (`gateway.api.paging.CursorCodec`).
    cursors: CursorCodec

    # -- helpers -------------------------------------------------------------------------
    def stored_idempotency_key(self, organisation: str, key: str) -> str:
        """What the database keeps of an `Idempotency-Key`: HMAC-SHA256, base64url."""
        mac = hmac.new(
            self.idempotency_secret,
            organisation.encode("utf-8") + b"\x00" + key.encode("ascii"),
            hashlib.sha256,
        ).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _organisation(
        self, session: Session, actor: Actor, action: str, signal_id: str | None = None
    ) -> str:
        """The actor's organisation; an actor without one (a person) owns no signal here,
        and its attempt is audited like any other refusal."""
        if actor.organisation is None:
            self._not_found(session, actor, action, signal_id)
        return actor.organisation

    def _not_found(
        self, session: Session, actor: Actor, action: str, signal_id: str | None
    ) -> NoReturn:
        resource = Resource(
            type="signal", id=safe_uuid(signal_id) if signal_id is not None else None
        )
        refuse(
            session,
            actor,
            self.engine.decide(actor, action, resource),
            resource,
            NotFound("No signal with this id for your organisation."),
        )

    def _own(self, session: Session, actor: Actor, action: str, signal_id: str) -> Signal:
        """The actor's own signal, or a 404 whose audit entry is the same whether the id
        is another organisation's or does not exist (no oracle either way)."""
        organisation = self._organisation(session, actor, action, signal_id)
        found = get_signal(session, organisation, signal_id)
        if found is None:
            self._not_found(session, actor, action, signal_id)
        return found

    def _decide(self, session: Session, actor: Actor, action: str, resource: Resource) -> Decision:
        decision = self.engine.decide(actor, action, resource)
        if not decision.allowed:
            # a colleague's signal is as unknown to a professional as another
            # organisation's (a 404, not a 403 that would confirm it exists)
            error = (
                NotFound("No signal with this id for your organisation.")
                if decision.rule == NOT_OWN_SUBMISSION and resource.id is not None
                else None
            )
            refuse(session, actor, decision, resource, error)
        return decision

    def _linkage_input(
        self,
        found: InputErrors,
        submission: Submission,
        subject: Mapping[str, Any],
        category: Category | None,
    ) -> Callable[[Pseudonymiser], dict[str, frozenset[bytes]]] | None:
        """Check the subject (or, blind, `matchKeys`) without the OPRF work, adding every
        error to `found`; return what turns it into the category's pseudonyms, None when
        it is refused. Exactly one of the two is given (one refused by the schema counts
        as given). The linkage families the category uses are checked here only when the
        category is known: with an unknown one there is nothing to check them against."""
        subject_given = submission.subject is not None or found.refused("/subject")
        keys_given = submission.match_keys is not None or found.refused("/matchKeys")
        if subject_given == keys_given:
            found.add(
                InvalidInput(
                    "Send either subject or matchKeys, not both."
                    if subject_given
                    else "The signal names no subject.",
                    errors=[FieldError("", "Exactly one of subject and matchKeys")],
                )
            )
            return None
        uses = set(category.linkage_keys) if category is not None else None
        if submission.match_keys is not None:
            checked = found.capture(lambda: check_match_keys(submission.match_keys))
            if checked is None:
                return None
            elements, key_id = checked
            families: set[str] = set(elements)
            where = "/matchKeys"

            def pseudonyms(current: Pseudonymiser) -> dict[str, frozenset[bytes]]:
                return move_to_current(elements, key_id, current, self._earlier_key(current))

        elif submission.subject is not None and not found.refused("/subject"):
            keys = found.capture(lambda: derive_linkage_keys(subject))
            if keys is None:
                return None
            if uses is not None:
                keys = {f: v for f, v in keys.items() if f in uses}
            families = set(keys)
            where = "/subject"

            def pseudonyms(current: Pseudonymiser) -> dict[str, frozenset[bytes]]:
                return current.pseudonyms_by_family(keys)

        else:
            return None
        if uses is not None and not families & uses:
            found.add(
                InvalidSubject(
                    [FieldError(where, "No linkage key this category uses can be derived")]
                )
            )
            return None
        return pseudonyms

    @staticmethod
    def _add(found: InputErrors, errors: Sequence[FieldError]) -> None:
        if errors:
            found.add(
                InvalidInput(
                    f"The signal has {len(errors)} invalid value(s); see errors.",
                    errors=list(errors),
                )
            )

    def _earlier_key(self, current: Pseudonymiser) -> Callable[[str], Pseudonymiser | None]:
        """The key before `current`, by id (a blind submission evaluated just before a
        rotation); None for any other id."""
        return lambda kid: Pseudonymiser.previous(self.keys, kid, current)

    def _meldpunt_key(self, payload: object, directory: DirectoryView) -> KeyRecord:
        """The meldpunt key the payload is encrypted for: the active one, or after a
        rotation a previous one the directory still publishes (a partner whose directory
        copy is a minute old is not refused)."""
        active = self.keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
        named = set(recipient_kids(payload))
        if active.kid in named:
            return active
        for record in reversed(self.keys.records(KeyPurpose.MELDPUNT_ENCRYPTION)):
            if record.kid in named and directory.get(record.kid) is not None:
                return record
        return active

    # -- the actions ---------------------------------------------------------------------
    def submit(self, session: Session, actor: Actor, submission: Submission) -> Submitted:
        """Check, pseudonymise, store, match and audit one signal."""
        return self._submit(session, actor, submission)

    def submit_report(self, session: Session, actor: Actor, report: Report) -> Submitted:
        """A signal filed on the web (a professional without a connected system).

        Exactly the API's submission: the same checks, policy question, pseudonyms,
        envelope check and audit entry. The one difference: the report arrives in clear
        over TLS, and is sealed here — a JWE (`gateway.crypto.jwe`, as the partner client
        builds it) for the current encryption keys of every recipient the policy names
        for the category — once the input is valid and the policy allows it. The clear
        text is never stored, logged or audited.
        """
        text_errors = report_errors(report.text)
        submission = Submission(
            reference=report.reference or web_reference(),
            category=report.category,
            subject=report.subject,
            payload={},
        )

        def seal(category: Category) -> Mapping[str, Any]:
            plaintext = json.dumps(
                {"summary": report.text, "channel": "web-intake"}, ensure_ascii=False
            ).encode("utf-8")
            return self.seal(category, plaintext)

        return self._submit(session, actor, submission, seal=seal, extra_errors=text_errors)

    def seal(self, category: Category, plaintext: bytes) -> dict[str, Any]:
        """A JWE of `plaintext` for every current encryption key of the category's
        required recipients (the meldpunt always among them), from the directory."""
        recipients = set(category.required_recipients) | {MELDPUNT}
        keys = [jwk for org, jwk in self.directory.current().values() if org in recipients]
        return encrypt_for_recipients(plaintext, keys)

    def _submit(
        self,
        session: Session,
        actor: Actor,
        submission: Submission,
        *,
        seal: Callable[[Category], Mapping[str, Any]] | None = None,
        extra_errors: Sequence[FieldError] = (),
    ) -> Submitted:
        organisation = self._organisation(session, actor, "signal.create")
        subject = dict(submission.subject or {})
        names = subject_name_parts(subject)
        # Every check that needs neither the policy's decision nor a key's secret runs
        # first and reports together (`InputErrors`); what costs (decryption, OPRF) runs
        # only on a request found valid and allowed.
        found = InputErrors()
        if submission.refused:
            found.add(
                InvalidInput(
                    f"The signal has {len(submission.refused)} invalid value(s); see errors.",
                    errors=submission.refused,
                )
            )
        if submission.idempotency_key is not None:
            header = submission.idempotency_key
            found.capture(lambda: check_idempotency_key(header, names))
        if not found.refused("/reference"):
            self._add(found, reference_errors(submission.reference, names))
        self._add(found, extra_errors)
        category = None
        if not found.refused("/category"):
            category = self.engine.category(submission.category)
            if category is None:
                self._add(found, [FieldError("/category", "Not a category of the active policy")])
        linkage = self._linkage_input(found, submission, subject, category)
        directory = self.directory.view()
        required = set(category.required_recipients) | {MELDPUNT} if category else None
        inspected = meldpunt_key = None
        if seal is None and not found.refused("/payload"):
            meldpunt_key = self._meldpunt_key(submission.payload, directory)
            inspected = inspect_envelope(
                submission.payload,
                category_recipients=required,
                directory=directory,
                meldpunt_kid=meldpunt_key.kid,
                optional_kinds=category.optional_recipient_kinds if category else None,
                kind_of=directory.kind_of,
            )
            found.absorb(inspected.errors)
        found.raise_if_any()
        assert category is not None and required is not None and linkage is not None

        resource = Resource(type="signal", category=submission.category, organisation=organisation)
        # The one policy question; decided in memory, so the write transaction (SQLite's
        # write lock) starts only once the checks below have passed.
        decision = self._decide(session, actor, "signal.create", resource)
        if seal is not None:
            payload = seal(category)
            check_envelope(
                payload,
                category_recipients=required,
                directory=directory,
                meldpunt_private_jwk=self.keys.private_jwk(
                    self._meldpunt_key(payload, directory).kid
                ),
                optional_kinds=category.optional_recipient_kinds,
                kind_of=directory.kind_of,
            )
        else:
            payload = submission.payload
            assert inspected is not None and inspected.parsed is not None
            assert meldpunt_key is not None
            check_decryption(inspected.parsed, self.keys.private_jwk(meldpunt_key.kid))
        pseudonymiser = self.pseudonymiser()
        uses = set(category.linkage_keys)
        linked: dict[str, frozenset[bytes]] = {
            f: p for f, p in linkage(pseudonymiser).items() if f in uses
        }
        if category.test:
            return self._test_signal(session, actor, decision, submission, organisation, linked)
        key = submission.idempotency_key
        created = create_signal(
            session,
            NewSignal(
                organisation=organisation,
                organisation_kind=actor.organisation_kind or "",
                reference=submission.reference,
                category=submission.category,
                pseudonyms=linked,
                pseudonym_key_id=pseudonymiser.kid or "",
                payload=json.dumps(payload, separators=(",", ":")),
                retention_days=category.retention_days,
                idempotency_key=(
                    self.stored_idempotency_key(organisation, key) if key is not None else None
                ),
                request_hash=submission.request_digest if key is not None else None,
                submitted_by=actor.id if actor.type == "user" else None,
            ),
            seal=partial(seal_payload, self.keys),
        )
        signal = created.signal
        subjects = subject_refs(linked)
        audited = Resource(
            type="signal", id=signal.id, category=signal.category, organisation=organisation
        )
        if not created.created:
            # An idempotent retry: nothing stored, but the retry is an access like any other.
            record_decision(session, actor, decision, audited, detail={"replay": True})
            body = signal.stored_response or signal_json(signal)
            return Submitted(signal, body, replay=True)
        # The partner reads its own entry: it says what the partner did and nothing of
        # what the gateway found. The matching outcome is the gateway's own entry, written
        # by the outbox processor for every signal (hit or not, so the log's growth tells
        # nothing either) and readable by the meldpunt's privacy officer only.
        receipt = record_decision(
            session,
            actor,
            decision,
            audited,
            subjects=subjects,
            detail={"category": signal.category, "linkageKeys": list(signal.linkage_keys)},
        )
        body = signal_json(signal, receipt.leaf_hash_b64)
        if key is not None:  # only a retry with the key reads it back
            remember_response(session, signal.id, body)
        return Submitted(signal, body, replay=False)

    @staticmethod
    def _test_signal(
        session: Session,
        actor: Actor,
        decision: Decision,
        submission: Submission,
        organisation: str,
        linked: Mapping[str, frozenset[bytes]],
    ) -> Submitted:
        """A signal in a category the policy reserves for conformance tests.

        Everything a real signal goes through has been checked (policy, reference,
        subject, envelope for every required recipient); it is then erased at once, before
        the response: no row, payload, pseudonym, idempotency record or outbox work, so
        it is never matched or shared, and what it says of the person reaches no one. The
        audit entry stays, for the receipt, without subject references.
        """
        moment = datetime.now(UTC)
        signal = Signal(
            id=recordable_uuid(),
            organisation=organisation,
            organisation_kind=actor.organisation_kind or "",
            reference=submission.reference,
            category=submission.category,
            status="erased",
            created_at=moment,
            expires_at=moment,
            withdrawn_at=None,
            linkage_keys=tuple(sorted(linked)),
            repeat_of=None,
            submitted_by=actor.id if actor.type == "user" else None,
        )
        audited = Resource(
            type="signal", id=signal.id, category=signal.category, organisation=organisation
        )
        receipt = record_decision(
            session,
            actor,
            decision,
            audited,
            detail={
                "category": signal.category,
                "linkageKeys": list(signal.linkage_keys),
                "test": True,
            },
        )
        return Submitted(signal, signal_json(signal, receipt.leaf_hash_b64), replay=False)

    def withdraw(self, session: Session, actor: Actor, signal_id: str) -> Withdrawn:
        """Withdraw the actor's own signal: payload and pseudonyms are deleted at once."""
        signal = self._own(session, actor, "signal.withdraw", signal_id)
        resource = _signal_resource(signal)
        decision = self._decide(session, actor, "signal.withdraw", resource)
        removal = withdraw_signal(session, signal.organisation, signal.id)
        if removal is None:  # pragma: no cover - read above in this transaction
            raise NotFound("No signal with this id for your organisation.")
        receipt = record_decision(session, actor, decision, resource, subjects=removal.subjects)
        return Withdrawn(removal.signal, signal_json(removal.signal, receipt.leaf_hash_b64))

    def check_cursor(self, cursor: str) -> None:
        """A `cursor` of this list, or `InvalidCursor` (checked with the rest of the query)."""
        self.cursors.decode(cursor)

    def list(
        self, session: Session, actor: Actor, cursor: str | None, limit: int | None
    ) -> Page[Signal]:
        """The actor organisation's own signals, oldest first. A person the policy lets
        see only what they filed themselves (a professional) gets only those."""
        organisation = self._organisation(session, actor, "signal.list")
        resource = Resource(type="signal", organisation=organisation)
        decision = self.engine.decide(actor, "signal.list", resource)
        submitter = None
        if not decision.allowed and actor.type == "user":
            own = Resource(type="signal", organisation=organisation, submitter=actor.id)
            narrowed = self.engine.decide(actor, "signal.list", own)
            if narrowed.allowed:
                decision, resource, submitter = narrowed, own, actor.id
        if not decision.allowed:
            refuse(session, actor, decision, resource)
        page = list_signals(session, organisation, cursor, limit, self.cursors, submitter=submitter)
        detail: dict[str, Any] = {"count": len(page.items)}
        if submitter is not None:
            detail["ownSubmissions"] = True
        record_decision(session, actor, decision, resource, detail=detail)
        return page

    def get(self, session: Session, actor: Actor, signal_id: str) -> Signal:
        """One of the actor organisation's own signals; any other id is a 404."""
        signal = self._own(session, actor, "signal.read", signal_id)
        resource = _signal_resource(signal)
        decision = self._decide(session, actor, "signal.read", resource)
        record_decision(
            session, actor, decision, resource, subjects=signal_subject_refs(session, signal.id)
        )
        return signal


def _signal_resource(signal: Signal) -> Resource:
    return Resource(
        type="signal",
        id=signal.id,
        category=signal.category,
        organisation=signal.organisation,
        submitter=signal.submitted_by,
    )
