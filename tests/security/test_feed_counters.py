"""A partner's ids and cursors count nothing of other organisations' rows.

Found by an attack on the notification feed: notifications of all recipients share one
table, and a notification's id and the feed's cursor were its row id. When a partner's
signal expires, the meldpunt's copy of the expiry notice is written straight after the
partner's own if the signal was ever in a match, so the partner's next id skipped one:
a hit, readable from its own feed (the policy tells partners nothing of hits). A
partner's signals and shares were paged by row ids too, which count everyone's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from gateway.api.paging import MAX_CURSOR_LENGTH, InvalidCursor, decode_cursor
from gateway.matching.processor import process_outbox
from gateway.signals.expiry import expire_signals
from tests.security.test_matching_oracle import FRESH, REPORTED
from tests.signals.test_api import body


def _opaque(value: str) -> bool:
    """Not a number, nor the plain codec's readable form."""
    try:
        decode_cursor(value)
    except InvalidCursor:
        return not value.isdigit() and len(value) == MAX_CURSOR_LENGTH
    return False


def test_expiry_notices_of_a_matched_signal_leave_no_trace_in_the_partners_feed(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    police, care = token_headers("police"), token_headers("care")
    reported = body(client, care, "JZ-1", "possible-victim", givenNames="Eva", **REPORTED)
    assert client.post("/v1/signals", json=reported, headers=care).status_code == 201
    first = {"familyName": "Visser", "dateOfBirth": "2006-05-05"}
    for reference, subject in (("BVH-1", first), ("BVH-2", REPORTED), ("BVH-3", FRESH)):
        sent = body(client, police, reference, "possible-victim", givenNames="Eva", **subject)
        assert client.post("/v1/signals", json=sent, headers=police).status_code == 201
    svc = app.extensions["ketenpoort"]
    process_outbox(svc.db)
    expire_signals(svc.db, svc.policy.engine, now=datetime.now(UTC) + timedelta(days=800))
    process_outbox(svc.db)  # the expiry notices, written as the background job does

    feed = client.get("/v1/notifications", headers=police).get_json()
    ids = [item["id"] for item in feed["items"]]
    assert len(ids) >= 3 and all(_opaque(i) for i in [*ids, feed["next"]])
    # an id is also the position after it, as a cursor
    after_first = client.get(f"/v1/notifications?after={ids[0]}", headers=police).get_json()
    assert [item["id"] for item in after_first["items"]] == ids[1:]
    assert after_first["next"] == feed["next"]
    # another collection's cursor is no position in this feed
    page = client.get("/v1/signals?limit=1", headers=police).get_json()
    assert _opaque(page["next"])
    wrong = client.get(f"/v1/notifications?after={page['next']}", headers=police)
    assert wrong.status_code == 400
    assert wrong.get_json()["type"].endswith("/problems/invalid-cursor")
