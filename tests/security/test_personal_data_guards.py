"""Weakness 8 of the outside attack: personal-data guards bypassed by ordinary variants.

References like `BVH<bsn>`, `1234.56.782`, `123 456 782`, `17 april 2009`, `17/04/09`,
an `Idempotency-Key` holding a BSN, and an `X-Request-Id` with a family name were stored
as given. One detector (`gateway.pseudonyms.detector`) now guards every caller-chosen
string; idempotency keys rest only as keyed hashes; a caller's request id is kept apart
from ours and only when it holds no personal data.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.pseudonyms.detector import holds_personal_data, personal_data_kind
from gateway.signals.models import SignalRow
from tests.signals.test_api import BSN, body
from tests.test_http_conventions import assert_problem

OTHER_BSN = "123456782"


@pytest.mark.parametrize(
    "reference",
    [
        f"BVH{OTHER_BSN}",
        "1234.56.782",
        "123 456 782",
        "BVH-2026-123-456-782",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12",  # full-width digits
        "17 april 2009",
        "17 apr 2009",
        "17/04/09",
        "17-4-2009",
        "2009.04.17",
        "17042009",
        "BVH-vanderBerg",
        "BVH-Sanne-1",
    ],
)
def test_reference_holding_personal_data_is_400(
    client: FlaskClient, police: dict[str, str], reference: str
) -> None:
    response = client.post("/v1/signals", json=body(client, police, reference), headers=police)
    problem = assert_problem(response, 400, "invalid-input")
    assert [e["pointer"] for e in problem["errors"]] == ["/reference"]
    assert reference not in response.get_data(as_text=True)


@pytest.mark.parametrize("key", [BSN, f"key-{OTHER_BSN}", "17/04/09", "retry-van-der-Berg"])
def test_idempotency_key_holding_personal_data_is_400(
    client: FlaskClient, police: dict[str, str], key: str
) -> None:
    response = client.post(
        "/v1/signals", json=body(client, police), headers={**police, "Idempotency-Key": key}
    )
    problem = assert_problem(response, 400, "invalid-input")
    assert problem["errors"][0]["pointer"] == ""


def test_idempotency_key_rests_only_as_a_keyed_hash(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    key = "retry-7f3a9c21"
    headers = {**police, "Idempotency-Key": key}
    signal = body(client, police)
    first = client.post("/v1/signals", json=signal, headers=headers)
    again = client.post("/v1/signals", json=signal, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        stored = session.execute(
            select(SignalRow.idempotency_key).where(SignalRow.id == first.get_json()["id"])
        ).scalar_one()
    assert stored is not None and key not in stored and len(stored) == 43


def _entries(app: Flask) -> list[dict[str, object]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        return [json.loads(d) for d in session.execute(select(AuditEntryRow.data)).scalars()]


@pytest.mark.parametrize("caller_id", ["req-Jansen-00001", f"req-{OTHER_BSN}", "req-17-04-2009"])
def test_caller_request_id_with_personal_data_is_not_stored(
    app: Flask, client: FlaskClient, police: dict[str, str], caller_id: str
) -> None:
    subject = {"familyName": "Jansen"}
    response = client.post(
        "/v1/signals",
        json=body(client, police, "POL-1", **subject),
        headers={**police, "X-Request-Id": caller_id},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] != caller_id
    text = json.dumps(_entries(app))
    assert caller_id not in text


def test_a_clean_caller_request_id_is_kept_as_the_callers(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    response = client.post(
        "/v1/signals",
        json=body(client, police, "POL-2"),
        headers={**police, "X-Request-Id": "partner-req-000123"},
    )
    assert response.status_code == 201
    ours = response.headers["X-Request-Id"]
    created = [e for e in _entries(app) if e["action"] == "signal.create"]
    assert created[-1]["requestId"] == ours != "partner-req-000123"
    assert created[-1]["caller"] == {"requestId": "partner-req-000123"}


# -- the detector itself ------------------------------------------------------------------

SEPARATORS = st.sampled_from(["", " ", ".", "-", "/", "_", "  ", " - "])


def _bsn(digits: list[int]) -> str:
    """Complete eight digits to a BSN passing the 11-test (None-free: retried by filter)."""
    total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
    return "".join(map(str, digits)) + str(total % 11)


BSNS = (
    st.lists(st.integers(0, 9), min_size=8, max_size=8)
    .map(_bsn)
    .filter(lambda s: len(s) == 9 and int(s) > 0)
)


@given(BSNS, st.lists(SEPARATORS, min_size=8, max_size=8), st.sampled_from(["", "BVH", "x-"]))
def test_any_bsn_with_separators_is_found(bsn: str, seps: list[str], prefix: str) -> None:
    text = prefix + "".join(d + s for d, s in zip(bsn, [*seps, ""], strict=True))
    assert personal_data_kind(text) == "bsn"


@given(st.dates(date(1920, 1, 1), date(2025, 12, 31)), st.sampled_from(["-", "/", ".", " "]))
def test_any_date_in_numeric_or_written_form_is_found(day: date, sep: str) -> None:
    months = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
              "september", "oktober", "november", "december"]  # fmt: skip
    forms = [
        f"{day.day}{sep}{day.month}{sep}{day.year}",
        f"{day.day:02}{sep}{day.month:02}{sep}{day.year % 100:02}",
        f"{day.year}{sep}{day.month:02}{sep}{day.day:02}",
        f"{day.day:02}{day.month:02}{day.year}",
        f"{day.day} {months[day.month - 1]} {day.year}",
        f"{day.day} {months[day.month - 1][:3]} {day.year}",
    ]
    for form in forms:
        assert holds_personal_data(form), form


@given(st.text(max_size=200))
def test_the_detector_never_raises(text: str) -> None:
    personal_data_kind(text, {"jansen"})


def test_a_random_uuid_idempotency_key_is_never_refused() -> None:
    """Clients send version-4 UUIDs; their random digits sometimes look like a BSN or a
    date, which must not fail the submission (the key is stored only as a keyed hash)."""
    import uuid

    from gateway.signals.submission import check_idempotency_key

    shaped = "12345678-2aaa-4bbb-8ccc-123456782000"  # digit runs of BSN and date shape
    assert str(uuid.UUID(shaped)) == shaped
    check_idempotency_key(shaped, frozenset())
    for _ in range(2000):
        check_idempotency_key(str(uuid.uuid4()), frozenset())


def test_the_gateways_own_ids_are_recorded_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """About one random UUID in 70 holds a BSN or date shape; the gateway draws its
    signal and match ids again until none does, so a refusal about one is audited with
    its id (`safe_uuid` would record None)."""
    import uuid

    from gateway.pseudonyms import detector

    shaped = uuid.UUID("92889669-ee87-45d8-9060-1448bfc80fa7")  # 092889669 passes the 11-test
    clean = uuid.UUID("3f0c2a6e-bd4e-4c1b-9a7e-0e6f1d2c3b4a")
    assert detector.safe_uuid(str(shaped)) is None and detector.safe_uuid(str(clean))
    draws = iter([shaped, shaped, clean])
    monkeypatch.setattr(detector.uuid, "uuid4", lambda: next(draws))
    assert detector.recordable_uuid() == str(clean)
    monkeypatch.undo()
    assert all(detector.safe_uuid(detector.recordable_uuid()) for _ in range(2000))
