"""The privacy scan over the web intake: professionals file, fail and withdraw signals
about synthetic people through `/intake`; then no raw identifier and no report text is
in the database as it rests on disk, in a log line or in an audit entry, nor in any
page the gateway answered except the form given back to the person who typed it.

The needles and scans are the privacy proof's (`tests/integration/test_privacy_proof`).
"""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Flask
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.logs import configure_logging
from gateway.signals.models import SignalRow
from tests.integration.test_privacy_proof import (
    BYTEA,
    PEOPLE,
    _database_files,
    _pg_dump,
    invalid_bsn,
    needles_for,
)
from tests.web.test_intake_pages import _school, _sign_in
from tests.web.test_pages import csrf_token

SUBJECTS = PEOPLE[:12]
#: Report texts name the person, as real ones do; they must stay sealed.
NOTE = "Opvallend: {given} {family} (BSN {bsn}, geboren {day}) wordt opgehaald door Kwabbelrix."


def test_no_identifier_or_report_text_leaves_the_intake(app: Flask, database_url: str) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    _school(app)
    clients = [_sign_in(app, "l.smit"), _sign_in(app, "j.kok")]
    pages: list[tuple[str, int, bytes]] = []
    refused: list[bytes] = []

    def post(client: Any, path: str, data: dict[str, str], expected: int) -> None:
        response = client.post(path, data={**data, "csrf_token": csrf_token(client, "/intake")})
        assert response.status_code == expected, response.get_data(as_text=True)[-2000:]
        if expected < 400:
            pages.append((path, expected, response.get_data()))
        else:  # a refused form shows the person what they typed, to no one else
            refused.append(response.get_data())

    for n, person in enumerate(SUBJECTS):
        client = clients[n % 2]
        subject = person.subject(with_bsn=n % 3 != 0)
        report = NOTE.format(
            given=person.given_names,
            family=person.family_name,
            bsn=person.bsn,
            day=person.date_of_birth,
        )
        form = {**subject, "category": "concern", "report": report}
        post(client, "/intake", {**form, "bsn": invalid_bsn(person.bsn)}, 400)
        post(client, "/intake", {**form, "dateOfBirth": "2099-01-01"}, 400)
        post(client, "/intake", {**form, "reference": f"dossier {person.bsn}"}, 400)
        post(client, "/intake", {**form, "category": "possible-perpetrator"}, 403)
        post(client, "/intake", form, 303)
        listed = client.get("/intake")
        pages.append(("/intake", listed.status_code, listed.get_data()))
    by_name = {"l.smit": clients[0], "j.kok": clients[1]}
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        filed = session.execute(select(SignalRow.id, SignalRow.submitted_by)).all()
    assert len(filed) == len(SUBJECTS)
    for signal_id, name in filed[::3]:
        post(by_name[name], f"/intake/signals/{signal_id}/withdraw", {}, 303)

    needles = needles_for(SUBJECTS)
    needles.add_text("Kwabbelrix")
    hits: list[str] = []

    def scan(where: str, haystack: str | bytes) -> None:
        found = needles.find(haystack)
        if found:
            hits.append(f"{where}: {found[:5]}")

    assert all(needles.find(data) for data in refused), "the scan must see a typed value"
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert any('"route": "/intake"' in line for line in lines), "expected request log lines"
    for number, line in enumerate(lines, 1):
        scan(f"log line {number}", line)
    svc = app.extensions["ketenpoort"]
    with svc.db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow)).scalars().all()
        actions = {row.action for row in rows}
        assert {"signal.create", "signal.withdraw", "signal.list"} <= actions
        for row in rows:
            scan(f"audit entry {row.id} ({row.action})", row.data)
            decoded = json.dumps(json.loads(row.data), ensure_ascii=False)
            scan(f"audit entry {row.id} ({row.action}), decoded", decoded)
    for path, status, data in pages:
        scan(f"page {path} ({status})", data)
    svc.db.dispose()
    if database_url.startswith("sqlite"):
        for where, data in _database_files(database_url):
            scan(where, data)
    else:
        for number, line in enumerate(_pg_dump(database_url).splitlines(), 1):
            scan(f"pg_dump line {number}", line)
            for value in BYTEA.findall(line):
                scan(f"pg_dump line {number}, a bytea value", bytes.fromhex(value))
    assert not hits, f"raw identifiers found in {len(hits)} places:\n" + "\n".join(hits[:40])
