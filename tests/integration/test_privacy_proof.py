"""The privacy proof: hundreds of signals with known identifiers go in, none come out.

Synthetic people (checksum-valid BSNs, Dutch family names with prefixes, given names,
dates of birth) are submitted through the HTTP API by five partner organisations, so
that matches happen; with them go failing requests of every kind, withdrawals, list
and read calls and notification and match reads. Then the test looks for every raw
identifier, in every form a leak would take, in the database files (SQLite: the file
bytes, WAL and shared memory; PostgreSQL: a `pg_dump` of the test's schema), in every
log line, in every audit entry and in every HTTP response (body and headers). One hit
fails the test and names where it was found.

The names are made of rare syllables so that they cannot occur by chance in a dump;
every needle is at least eight characters, so random base64 cannot produce it either.
"""

from __future__ import annotations

import io
import json
import random
import re
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.api.openapi import operation
from gateway.api.validation import parse_body
from gateway.audit.models import AuditEntryRow
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.demo.people import valid_bsn
from gateway.logs import configure_logging
from gateway.pseudonyms.normalise import fold
from gateway.signals.schemas import SignalCreate
from tests.conftest import MELDPUNT_SCOPES

PARTNERS = {
    "police": "police",
    "zorg-twente": "care",
    "gemeente-hengelo": "municipality",
    "om-oost": "justice",
    "roc-twente": "education",
}
PREFIXES = ["van der", "van den", "de", "ter", "van 't", "in 't", "van", "den"]
FAMILY_HEADS = ["Quakkel", "Wolbrink", "Zwanepoel", "Hijlbe", "Dorrestij", "Kleijwegt"]
FAMILY_TAILS = ["steijn", "huisma", "sloterdijk", "kampius", "enhorstra", "borgmeule"]
GIVEN_HEADS = ["Wiepke", "Joormar", "Frauke", "Kwintij", "Ysoldje", "Brechtil"]
GIVEN_TAILS = ["lientje", "dusinus", "marijet", "rosalva"]
ACCENTED = ["Zwanepoëlsteijn", "Çelikhuisma-Dorrestijn", "Kleijwégtkampius"]
ACCENTED_GIVEN = ["Anaïskelien", "Renéejorisma"]
PEOPLE_COUNT = 90


def _bsn(rng: random.Random) -> str:
    """A checksum-valid BSN, first digit 2-6 (never a millisecond timestamp)."""
    return valid_bsn(rng, first=(2, 6))


@dataclass(frozen=True)
class Person:
    bsn: str
    prefix: str
    core: str
    given_names: str
    date_of_birth: date

    @property
    def family_name(self) -> str:
        return f"{self.prefix} {self.core}".strip()

    def subject(self, *, with_bsn: bool = True, **changes: str) -> dict[str, str]:
        subject = {
            "familyName": self.family_name,
            "givenNames": self.given_names,
            "dateOfBirth": self.date_of_birth.isoformat(),
        }
        if with_bsn:
            subject["bsn"] = self.bsn
        subject.update(changes)
        return subject


def make_people(count: int) -> list[Person]:
    rng = random.Random(20260417)
    cores = [h + t for h in FAMILY_HEADS for t in FAMILY_TAILS]
    rng.shuffle(cores)
    cores = ACCENTED + cores
    givens = [h + t for h in GIVEN_HEADS for t in GIVEN_TAILS]
    rng.shuffle(givens)
    givens = ACCENTED_GIVEN + givens
    people, seen = [], set()
    for n in range(count):
        bsn = _bsn(rng)
        while bsn in seen:
            bsn = _bsn(rng)
        seen.add(bsn)
        second = givens[(n * 7 + 3) % len(givens)]
        people.append(
            Person(
                bsn=bsn,
                prefix=PREFIXES[n % len(PREFIXES)] if n % 3 else "",
                core=cores[n % len(cores)],
                given_names=givens[n % len(givens)] + (f" {second}" if n % 4 == 0 else ""),
                date_of_birth=date(1990, 1, 1) + timedelta(days=rng.randint(0, 365 * 22)),
            )
        )
    return people


PEOPLE = make_people(PEOPLE_COUNT)


def invalid_bsn(bsn: str) -> str:
    """The same digits with the last one changed so that the 11-test fails."""
    return bsn[:8] + str((int(bsn[8]) + 1) % 10)


# --- needles: every form a leaked identifier could take ------------------------------


@dataclass
class Needles:
    numbers: set[str] = field(default_factory=set)  # matched between non-digits
    texts: set[str] = field(default_factory=set)  # matched case-insensitively
    _numbers: re.Pattern[str] | None = None

    def add_text(self, value: str) -> None:
        for form in (value, fold(value), json.dumps(value)[1:-1]):
            assert len(form) >= 8, f"needle too short to be safe: {form!r}"
            self.texts.add(form.lower())

    def find(self, haystack: str | bytes) -> list[str]:
        text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
        lower = text.lower()
        found = {n for n in self.texts if n in lower}
        if self._numbers is None:
            numbers = "|".join(sorted(self.numbers))
            self._numbers = re.compile(rf"(?<!\d)(?:{numbers})(?!\d)")
        found.update(m.group(0) for m in self._numbers.finditer(text))
        return sorted(found)


def needles_for(people: Iterable[Person]) -> Needles:
    needles = Needles()
    for person in people:
        needles.numbers.add(person.bsn)
        needles.numbers.add(invalid_bsn(person.bsn))
        day = person.date_of_birth
        needles.texts.add(day.isoformat())
        needles.texts.add(day.strftime("%d-%m-%Y"))
        needles.add_text(person.core)
        if person.prefix:
            needles.add_text(person.family_name)
        needles.add_text(person.given_names)
        for given in person.given_names.split():
            needles.add_text(given)
    return needles


# --- the traffic ---------------------------------------------------------------------


@dataclass
class Recorded:
    label: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Traffic:
    """Sends requests through the test client and keeps every response."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.responses: list[Recorded] = []
        self._keys: dict[str, list[dict[str, Any]]] = {}

    def send(self, label: str, method: str, path: str, **kwargs: Any) -> Response:
        response = self.client.open(path, method=method, **kwargs)
        self.responses.append(
            Recorded(label, response.status_code, list(response.headers), response.get_data())
        )
        return response

    def recipient_keys(self, headers: dict[str, str], category: str) -> list[dict[str, Any]]:
        if category not in self._keys:
            policy = self.send("policy", "GET", "/v1/policy", headers=headers).get_json()
            directory = self.send("directory", "GET", "/v1/directory", headers=headers)
            required = set(policy["categories"][category]["requiredRecipients"])
            self._keys[category] = [
                key
                for org in directory.get_json()["organisations"]
                if org["id"] in required
                for key in org["encryptionKeys"]["keys"]
            ]
        return self._keys[category]

    def body(
        self,
        headers: dict[str, str],
        person: Person,
        reference: str,
        category: str = "possible-victim",
        **subject: Any,
    ) -> dict[str, Any]:
        # a realistic payload names the person: it must stay sealed in the envelope
        note = (
            f"{person.given_names} {person.family_name}, BSN {person.bsn}, {person.date_of_birth}"
        )
        return {
            "reference": reference,
            "category": category,
            "subject": subject.pop("replace_subject", None) or person.subject(**subject),
            "payload": encrypt_for_recipients(
                json.dumps({"summary": note}).encode(), self.recipient_keys(headers, category)
            ),
        }


def _crash_route(app: Flask) -> None:
    """A route that fails after parsing, with every identifier in the exception."""

    @app.post("/v1/privacy-proof-crash")
    @operation(
        operation_id="privacyProofCrash",
        summary="test only",
        request=SignalCreate,
        scopes=("signals:write",),
        documented=False,
    )
    def crash() -> Response:
        signal = parse_body(SignalCreate)
        s = signal.subject
        raise RuntimeError(
            f"cannot handle {s.bsn} {s.given_names} {s.family_name} ({s.family_name!r}) "
            f"born {s.date_of_birth}"
        )


def _run_traffic(traffic: Traffic, tokens: dict[str, dict[str, str]]) -> dict[str, int]:
    """Everything a busy day brings; returns counts by outcome for sanity checks."""
    counts: dict[str, int] = {}
    created: dict[str, list[str]] = {org: [] for org in PARTNERS}

    def tally(response: Response, expected: int, what: str) -> Response:
        assert response.status_code == expected, (what, response.get_data(as_text=True))
        counts[what] = counts.get(what, 0) + 1
        return response

    def post(org: str, body: Any, expected: int, what: str, **kwargs: Any) -> Response:
        headers = {**tokens[org], **kwargs.pop("headers", {})}
        if "data" not in kwargs:
            kwargs["json"] = body
        response = traffic.send(what, "POST", "/v1/signals", headers=headers, **kwargs)
        return tally(response, expected, what)

    orgs = [o for o in PARTNERS if o != "roc-twente"]
    # successful signals: every person from one to four partners, in varying spellings
    for n, person in enumerate(PEOPLE):
        for k in range(1 + n % 4):
            org = orgs[(n + k) % len(orgs)]
            changes: dict[str, Any] = {}
            if k == 1 and n % 2:
                changes["with_bsn"] = False  # name and date of birth only
            if k == 2 and person.prefix:
                changes["familyName"] = person.family_name.upper()
            category = "concern" if k == 3 else "possible-victim"
            body = traffic.body(tokens[org], person, f"REF-{n:03d}-{k}", category, **changes)
            key = {"Idempotency-Key": f"idem-{n}-{k}"} if n % 5 == 0 else {}
            response = post(org, body, 201, "created", headers=key)
            created[org].append(response.get_json()["id"])
            if key and k == 0:
                post(org, body, 201, "idempotent retry", headers=key)
                post(org, {**body, "reference": "OTHER-1"}, 422, "key reused", headers=key)

    # failing requests of every kind, each carrying some person's identifiers
    school = "roc-twente"
    for n, person in enumerate(PEOPLE[:24]):
        org = orgs[n % len(orgs)]
        headers = tokens[org]
        base = traffic.body(headers, person, f"BAD-{n:03d}")
        post(org, {**base, "subject": person.subject(bsn=invalid_bsn(person.bsn))}, 400, "bsn")
        day = person.date_of_birth
        for wrong in (day.strftime("%d-%m-%Y"), f"{day.year}-02-31", "2099-01-01"):
            post(org, {**base, "subject": person.subject(dateOfBirth=wrong)}, 400, "date")
        post(org, {**base, "category": "arbeidsconflict"}, 400, "category")
        post(org, {**base, "reference": person.bsn}, 400, "reference bsn")
        post(org, {**base, "reference": f"dossier {day.isoformat()}"}, 400, "reference date")
        post(org, {**base, "reference": f"dossier {day.strftime('%d-%m-%Y')}"}, 400, "ref dmy")
        post(org, {**base, "reference": f"BVH {person.core}"}, 400, "reference name")
        given = person.given_names.split()[0].upper()
        post(org, {**base, "reference": f"JH-{given}-{n}"}, 400, "reference given name")
        for key in (person.bsn, f"{person.core}-{n}", day.isoformat()):
            post(org, base, 400, "idempotency key", headers={"Idempotency-Key": key})
        # a request id that is personal data is replaced, never echoed, logged or audited
        for request_id in (person.bsn, day.isoformat(), f"req-{day.strftime('%d-%m-%Y')}"):
            listed = traffic.send(
                "request id",
                "GET",
                "/v1/signals?limit=1",
                headers={**headers, "X-Request-Id": request_id},
            )
            tally(listed, 200, "request id")
            assert listed.headers["X-Request-Id"] != request_id
        extra = {**base, "subject": {**person.subject(), "nickname": person.core}}
        post(org, extra, 400, "unknown subject field")
        typed = {**base, "subject": {**person.subject(), "givenNames": [person.given_names]}}
        post(org, typed, 400, "wrong type")
        broken = json.loads(json.dumps(base))
        broken["payload"]["ciphertext"] = broken["payload"]["ciphertext"][:-4] + "AAAA"
        post(org, broken, 400, "undecryptable envelope")
        post(org, {**base, "payload": {"protected": person.core}}, 400, "malformed envelope")
        raw = json.dumps(base).encode()
        post(org, None, 400, "malformed json", data=raw[:-7], content_type="application/json")
        post(org, None, 415, "media type", data=raw, content_type="text/plain")
        big = {**base, "padding": "x" * (300 * 1024)}
        post(org, big, 413, "too large")
        deny = traffic.body(tokens[school], person, f"SCH-{n:03d}", "possible-perpetrator")
        post(school, deny, 403, "policy deny")
        post("reader", base, 403, "scope")
        tally(traffic.send("no token", "POST", "/v1/signals", json=base), 401, "no token")
        crash = traffic.send("crash", "POST", "/v1/privacy-proof-crash", json=base, headers=headers)
        tally(crash, 500, "crash")
        # identifiers in a URL (against the contract; a careless client might)
        query = f"/v1/signals?cursor={person.core}&limit=2"
        tally(traffic.send("query", "GET", query, headers=headers), 400, "cursor")
        path = f"/v1/signals/{person.bsn}"
        tally(traffic.send("path", "GET", path, headers=headers), 404, "unknown id")

    # withdrawals, reads and lists; another organisation's signal is a 404
    for org in orgs:
        for signal_id in created[org][::5]:
            path = f"/v1/signals/{signal_id}"
            tally(traffic.send("withdraw", "DELETE", path, headers=tokens[org]), 200, "withdraw")
        for signal_id in created[org][1::7]:
            path = f"/v1/signals/{signal_id}"
            tally(traffic.send("read", "GET", path, headers=tokens[org]), 200, "read")
            other = orgs[(orgs.index(org) + 1) % len(orgs)]
            tally(traffic.send("foreign", "GET", path, headers=tokens[other]), 404, "foreign")
        _page_through(traffic, tokens[org], "/v1/signals", "cursor", tally)
        _page_through(traffic, tokens[org], "/v1/notifications", "after", tally)
    _page_through(traffic, tokens["meldpunt"], "/v1/notifications", "after", tally)
    matches = _page_through(traffic, tokens["meldpunt"], "/v1/matches", "cursor", tally)
    assert len(matches) >= len(PEOPLE) // 2, "expected matches between partners"
    counts["matches"] = len(matches)
    return counts


def _page_through(
    traffic: Traffic, headers: dict[str, str], path: str, param: str, tally: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"{path}?limit=40" + (f"&{param}={cursor}" if cursor else "")
        page = tally(traffic.send("list", "GET", url, headers=headers), 200, "list").get_json()
        items.extend(page["items"])
        cursor = page.get("next")
        if not cursor or not page["items"]:
            return items


# --- the scans -----------------------------------------------------------------------


def _database_files(database_url: str) -> Iterator[tuple[str, bytes]]:
    """SQLite: main file, WAL and shared memory as they are, then after a checkpoint."""
    path = Path(database_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            yield f"SQLite file {part.name} (before checkpoint)", part.read_bytes()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    yield f"SQLite file {path.name} (after checkpoint)", path.read_bytes()


BYTEA = re.compile(r"\\\\x((?:[0-9a-f]{2})+)")


def _pg_dump(database_url: str) -> str:
    parts = urlsplit(database_url.replace("postgresql+psycopg://", "postgresql://", 1))
    options = unquote(parse_qs(parts.query)["options"][0])
    schema = options.removeprefix("-csearch_path=")
    plain = parts._replace(query="").geturl()
    result = subprocess.run(
        ["pg_dump", "--schema", schema, "--no-owner", "--dbname", plain],
        capture_output=True,
        check=True,
        timeout=60,
    )
    dump = result.stdout.decode()
    assert "COPY" in dump and "audit_entries" in dump, "the dump holds no data"
    assert BYTEA.search(dump), "expected bytea values in the dump"
    return dump


def test_no_identifier_reaches_database_logs_audit_or_responses(
    app: Flask, client: FlaskClient, token_headers: Any, database_url: str
) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    _crash_route(app)
    tokens: dict[str, dict[str, str]] = {
        org: token_headers(org, kind=kind) for org, kind in PARTNERS.items()
    }
    tokens["reader"] = token_headers("police", "signals:read directory:read")
    tokens["meldpunt"] = token_headers("meldpunt", MELDPUNT_SCOPES)
    traffic = Traffic(client)

    counts = _run_traffic(traffic, tokens)
    assert counts["created"] >= 200 and counts["crash"] == 24, counts

    needles = needles_for(PEOPLE)
    hits: list[str] = []

    def scan(where: str, haystack: str | bytes) -> None:
        found = needles.find(haystack)
        if found:
            hits.append(f"{where}: {found[:5]}")

    # (c) every log line
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    requests_logged = sum(1 for line in lines if json.loads(line).get("event") == "request")
    assert requests_logged >= len(traffic.responses), "expected a log line per request"
    assert any('"unhandled error"' in line for line in lines), "the crashes were not logged"
    for number, line in enumerate(lines, 1):
        event = json.loads(line).get("event")
        scan(f"log line {number} ({event!r})", line)
    # (d) every audit entry, raw and decoded
    services = app.extensions["ketenpoort"]
    with services.db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow)).scalars().all()
        assert len(rows) > counts["created"] + counts["withdraw"] + counts["read"]
        for row in rows:
            decoded = json.dumps(json.loads(row.data), ensure_ascii=False)
            scan(f"audit entry {row.id} ({row.action})", row.data)
            scan(f"audit entry {row.id} ({row.action}), decoded", decoded)
    # (e) every response, body and headers
    for number, recorded in enumerate(traffic.responses, 1):
        where = f"response {number} ({recorded.label}, {recorded.status})"
        scan(f"{where} body", recorded.body)
        for name, value in recorded.headers:
            scan(f"{where} header {name}", value)
    # (a)/(b) the database as it rests on disk
    services.db.dispose()
    if database_url.startswith("sqlite"):
        for where, data in _database_files(database_url):
            scan(where, data)
    else:
        dump = _pg_dump(database_url)
        for number, line in enumerate(dump.splitlines(), 1):
            scan(f"pg_dump line {number}", line)
            # bytea columns (audit entry bytes, stored responses) are dumped as hex
            for value in BYTEA.findall(line):
                scan(f"pg_dump line {number}, a bytea value", bytes.fromhex(value))

    places = Counter(re.sub(r" \d+", " #", hit.split(":")[0]) for hit in hits)
    assert not hits, f"raw identifiers found in {len(hits)} places: {dict(places)}\n" + "\n".join(
        hits[:40]
    )


def test_the_scan_finds_what_it_looks_for() -> None:
    """The needles catch each identifier in every form, and nothing else."""
    person = PEOPLE[1]
    needles = needles_for([person])
    day = person.date_of_birth
    for leak in (
        f'{{"bsn":"{person.bsn}"}}',
        f"x{person.core.upper()}y",
        fold(person.family_name),
        f"born {day.strftime('%d-%m-%Y')}",
        f"on {day.isoformat()}T00:00",
        json.dumps(PEOPLE[0].core),
    ):
        target = needles if leak != json.dumps(PEOPLE[0].core) else needles_for([PEOPLE[0]])
        assert target.find(leak), leak
    assert not needles.find(f"ts 1{person.bsn}7 and id {person.bsn[:8]}")
    assert len({p.bsn for p in PEOPLE}) == len(PEOPLE)


@pytest.mark.parametrize("person", PEOPLE[:3], ids=lambda p: p.core)
def test_synthetic_people_are_valid_input(person: Person) -> None:
    from gateway.pseudonyms.matchkeys import derive_match_keys

    assert set(derive_match_keys(person.subject())) == {"bsn", "name_dob"}


@pytest.mark.parametrize(
    ("reference", "idempotency_key", "accepted"),
    [
        ("BVH-2026-00123", "3f2a9c1e-key", True),
        ("BERGEN-2026-1", "k-1", True),  # "Berg" is a word of the name, "Bergen" is not
        ("BVH-BERG-1", None, False),
        ("JH Sanne 12", None, False),
        ("dossier-vanderquakkelsteijn", None, False),  # long enough to count inside a word
        ("BVH-1", "berg-2026", False),
        ("BVH-1", "111222333", False),
    ],
)
def test_partner_strings_holding_the_subjects_identifiers_are_refused(
    client: FlaskClient,
    token_headers: Any,
    reference: str,
    idempotency_key: str | None,
    accepted: bool,
) -> None:
    """The reference and the idempotency key are stored as given: no personal data."""
    headers = token_headers("police")
    person = Person("111222333", "van der", "Berg-Quakkelsteijn", "Sanne", date(2009, 4, 17))
    body = Traffic(client).body(headers, person, reference)
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = client.post("/v1/signals", json=body, headers={**headers, **extra})
    assert response.status_code == (201 if accepted else 400), response.get_data(as_text=True)
    if not accepted:
        problem = response.get_json()
        assert problem["errors"][0]["pointer"] in {"/reference", ""}
        assert "Berg" not in response.get_data(as_text=True)
