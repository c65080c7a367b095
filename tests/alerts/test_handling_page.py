"""The `/alerts` page: a privacy officer marks an open alert handled through its form
(CSRF token included); refusals show the page again, saying why, never a 500; a
coordinator cannot."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gateway.alerts.models import NOTE_MAX_LENGTH
from tests.alerts.test_alerts import entries
from tests.alerts.test_handling import FLEUR, NOTE, handle, raise_refusals, row
from tests.web.test_pages import _signed_in, csrf_token


def _post(client: FlaskClient, alert_id: str, note: str, token: str | None = None) -> TestResponse:
    data = {"alert": alert_id, "note": note}
    data["csrf_token"] = token if token is not None else csrf_token(client, "/alerts")
    return client.post("/alerts/handled", data=data)


def test_an_officer_marks_an_alert_handled_through_the_form(
    app: Flask, client: FlaskClient
) -> None:
    alert = raise_refusals(app)
    _signed_in(app, client, "p.visser", "privacy-officer")
    page = client.get("/alerts")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # One form per open alert: labelled note field, the alert's id, the CSRF token.
    form = re.search(r'<form method="post" action="/alerts/handled".*?</form>', html, re.S)
    assert form is not None
    assert f'<label class="utrecht-form-label" for="note-{alert.id}">' in form.group(0)
    assert f'id="note-{alert.id}" name="note"' in form.group(0)
    assert f'name="alert" value="{alert.id}"' in form.group(0)
    assert 'name="csrf_token"' in form.group(0)
    assert f'maxlength="{NOTE_MAX_LENGTH}"' in form.group(0)
    assert f'aria-describedby="alert-{alert.id}"' in form.group(0)  # which alert, read out
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]

    done = _post(client, alert.id, f"{NOTE}\r\nAfgesloten.")
    assert done.status_code == 302 and done.headers["Location"].endswith("/alerts")
    after = client.get("/alerts").get_data(as_text=True)
    assert "utrecht-alert--ok" in after  # the flash says it is done
    assert 'action="/alerts/handled"' not in after  # no open alert left, so no form
    assert "p.visser" in after and f"{NOTE}<br>Afgesloten." in after
    stored = row(app, alert.id)
    assert (stored.handled_by, stored.note) == ("p.visser", f"{NOTE}\nAfgesloten.")
    [entry] = entries(app, "alert.handle")
    assert entry["actor"]["id"] == "p.visser" and entry["resource"]["id"] == alert.id


def test_refusals_show_the_page_again_with_the_reason(app: Flask, client: FlaskClient) -> None:
    alert = raise_refusals(app)
    _signed_in(app, client, "p.visser", "privacy-officer")

    for note in ("   ", "x" * (NOTE_MAX_LENGTH + 1), "BSN 111222333 nagevraagd"):
        refused = _post(client, alert.id, note)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 400, note
        # The message beside the field, tied to it, and in the summary linking to it.
        assert f'id="note-{alert.id}-error"' in html
        assert re.search(rf'id="note-{alert.id}"[^>]*aria-invalid="true"', html)
        assert f'href="#note-{alert.id}"' in html
        assert f">{note}</textarea>" in html  # kept, to be put right
    assert row(app, alert.id).handled_at is None

    unknown = _post(client, "6f1c1c3e-8a4b-4c57-9a54-2d3e4f5a6b7c", NOTE)
    assert unknown.status_code == 404 and 'role="alert"' in unknown.get_data(as_text=True)
    garbage = _post(client, "x" * 400, NOTE)
    assert garbage.status_code == 400

    handle(app, FLEUR, alert.id, NOTE)
    twice = _post(client, alert.id, "Nog eens bekeken.")
    assert twice.status_code == 409
    assert row(app, alert.id).note == NOTE

    no_token = _post(client, alert.id, NOTE, token="")
    assert no_token.status_code == 400
    assert entries(app, "web.csrf-refused")


def test_a_coordinator_cannot_mark_alerts_handled(app: Flask, client: FlaskClient) -> None:
    alert = raise_refusals(app)
    _signed_in(app, client, "c.jansen", "coordinator")
    refused = _post(client, alert.id, NOTE, token=csrf_token(client, "/"))
    assert refused.status_code == 403
    assert row(app, alert.id).handled_at is None
    assert entries(app, "alert.handle") == []
