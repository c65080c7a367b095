"""The match queue and page: tier, state and the linkage keys that agreed; the review
forms (CSRF, audited through `MatchService.review`), with Flask's test client."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from gateway.matching.processor import pending_counts
from tests.matches_support import ANNA, MatchDesk
from tests.web.test_pages import _signed_in, csrf_token


def _match_id(page: str) -> str:
    found = re.search(r'href="/matches/([0-9a-f-]{36})"', page)
    assert found
    return found.group(1)


def test_the_queue_and_the_match_page_show_tier_state_and_keys(app: Flask, desk: MatchDesk) -> None:
    desk.two_signals(other={**ANNA, "familyName": "van den Bergh"})
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    queue = coordinator.get("/matches")
    text = queue.get_data(as_text=True)
    assert queue.status_code == 200
    assert "Zekerheid" in text and "sterk" in text and "nieuw" in text
    # A typo in the family name: what agreed, in words, not the API's family codes.
    assert "achternaam, bijna" in text and "voornaam" in text and "geboortedatum" in text
    assert "del_dob" not in text
    # each row's link says, to a screen reader, which match it opens (not only a time)
    assert re.search(
        r'href="/matches/[0-9a-f-]{36}"><span class="kp-visually-hidden">Treffer van ', text
    )
    match_id = _match_id(text)
    page = coordinator.get(f"/matches/{match_id}").get_data(as_text=True)
    assert "Treffer afwijzen" in page and 'name="reason"' in page
    assert 'value="different-persons"' in page and "Verschillende personen" in page
    assert "achternaam met één tikfout + geboortedatum" in page and "del_dob" not in page
    assert "achternaam + geboortedatum<" not in page  # name_dob did not agree
    # the signals' codes in Dutch, on the queue and the match page
    assert "mogelijk slachtoffer" in text and "possible-victim" not in text
    assert ">actief<" in page and ">active<" not in page and "mogelijk slachtoffer" in page


def test_the_queue_does_the_pending_matching_itself(app: Flask, desk: MatchDesk) -> None:
    """No background job here and no API read before: the page drains the outbox first."""
    first = desk.submit(desk.police, ANNA)
    second = desk.submit(desk.care, ANNA)
    assert pending_counts(app.extensions["ketenpoort"].db)["pending"] == 2
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    match_id = _match_id(coordinator.get("/matches").get_data(as_text=True))
    assert pending_counts(app.extensions["ketenpoort"].db)["pending"] == 0
    (match,) = desk.matches()
    assert match["id"] == match_id and {s["id"] for s in match["signals"]} == {first, second}


def test_dismissing_needs_a_reason_and_the_csrf_token(app: Flask, desk: MatchDesk) -> None:
    desk.two_signals()
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    match_id = _match_id(coordinator.get("/matches").get_data(as_text=True))
    path = f"/matches/{match_id}"
    token = csrf_token(coordinator, path)

    forged = coordinator.post(f"{path}/dismissal", data={"reason": "different-persons"})
    assert forged.status_code == 400  # no CSRF token: refused, nothing changed
    no_reason = coordinator.post(f"{path}/dismissal", data={"csrf_token": token})
    assert no_reason.status_code == 400
    assert "Kies waarom de treffer wordt afgewezen" in no_reason.get_data(as_text=True)

    review = coordinator.post(f"{path}/review", data={"csrf_token": token, "state": "under-review"})
    assert review.status_code == 303 and review.headers["Location"].endswith(path)
    assert "in behandeling" in coordinator.get(path).get_data(as_text=True)

    done = coordinator.post(
        f"{path}/dismissal", data={"csrf_token": token, "reason": "family-member"}
    )
    assert done.status_code == 303
    page = coordinator.get(path).get_data(as_text=True)
    assert "afgewezen" in page and "Een familielid" in page and "Treffer heropenen" in page
    assert "afgewezen" in coordinator.get("/matches").get_data(as_text=True)

    officer = app.test_client()
    _signed_in(app, officer, "p.visser", "privacy-officer")
    refused = officer.post(
        f"{path}/dismissal",
        data={"csrf_token": csrf_token(officer, "/"), "reason": "data-error"},
    )
    assert refused.status_code == 403


def test_the_match_page_says_what_each_signal_was_sent_with(app: Flask, desk: MatchDesk) -> None:
    """A possible match on the names alone: the page tells a date of birth one sender did
    not know from one that differs (the agreement alone cannot)."""
    names_only = {"familyName": ANNA["familyName"], "givenNames": ANNA["givenNames"]}
    match, _first, _second = desk.two_signals(other=names_only)
    assert match["tier"] == "possible"
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    page = coordinator.get(f"/matches/{match['id']}").get_data(as_text=True)
    cells = re.findall(r'<td class="utrecht-table__cell">([^<]*)</td>', page)
    assert "Meegestuurd" in page
    assert cells.count("achternaam, voornaam, geboortedatum") == 1  # the police's signal
    # care's signal was sent with the names only; both agree on them
    assert cells.count("achternaam, voornaam") == 3
    assert "2010" not in page and "van den Berg" not in page  # the kinds, never the values


def test_a_new_signal_of_a_match_in_a_case_is_added_to_that_case(
    app: Flask, desk: MatchDesk, token_headers: Any
) -> None:
    """A match's signals are in a case; a third partner's signal joins the match. The match
    is no longer "linked", comes first in the queue, names every signal's id and offers
    to add the new signal to the case (audited through `CaseService.link_match`)."""
    match, first, second = desk.two_signals()
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    path = f"/matches/{match['id']}"
    token = csrf_token(coordinator, path)
    made = coordinator.post(
        "/cases", data={"csrf_token": token, "match_id": match["id"], "title": "Casus Hengelo"}
    )
    assert made.status_code == 302
    case_path = made.headers["Location"]
    page = coordinator.get(path).get_data(as_text=True)
    assert "gekoppeld aan een casus" in page and "alle 2 actieve signalen" in page

    third = desk.submit(token_headers("education"), ANNA, reference="ROC-2026-0007")
    other = {"familyName": "Jansen", "givenNames": "Piet", "dateOfBirth": "2009-01-02"}
    desk.submit(desk.police, other, reference="BVH-2026-00999")
    desk.submit(desk.care, other, reference="ZRG-2026-00999")

    queue = coordinator.get("/matches").get_data(as_text=True)
    assert _match_id(queue) == match["id"]  # the match with the new signal comes first
    assert "1 nieuw signaal in geen casus" in queue
    page = coordinator.get(path).get_data(as_text=True)
    assert "gekoppeld aan een casus" not in page
    assert "2 van 3 actieve signalen; 1 nog in geen casus" in page
    for signal_id in (first, second, third):
        assert '<code class="kp-id"' in page and signal_id in page
    assert "Casus Hengelo" in page and f'href="{case_path}"' in page
    assert "ROC-2026-0007" in page and "Deze signalen aan de casus toevoegen" in page

    case_id = case_path.rsplit("/", 1)[1]
    no_reason = coordinator.post(
        f"{case_path}/signals", data={"csrf_token": token, "match_id": match["id"]}
    )
    assert no_reason.status_code == 303 and no_reason.headers["Location"] == path
    assert "Geef een reden" in coordinator.get(path).get_data(as_text=True)

    added = coordinator.post(
        f"{case_path}/signals",
        data={"csrf_token": token, "match_id": match["id"], "reason": "Nieuw signaal school"},
    )
    assert added.status_code == 303 and added.headers["Location"] == case_path
    case = coordinator.get(case_path).get_data(as_text=True)
    assert "1 signaal van de treffer is aan de casus gekoppeld." in case
    assert "ROC-2026-0007" in case
    page = coordinator.get(path).get_data(as_text=True)
    assert "gekoppeld aan een casus" in page and "alle 3 actieve signalen" in page
    assert "Deze signalen aan de casus toevoegen" not in page
    again = coordinator.post(
        f"{case_path}/signals",
        data={"csrf_token": token, "match_id": match["id"], "reason": "Nog een keer"},
    )
    assert again.status_code == 303 and again.headers["Location"] == path
    # a match none of whose signals the case holds is not added through this form
    (unrelated,) = [m for m in desk.matches() if m["id"] != match["id"]]
    refused = coordinator.post(
        f"{case_path}/signals",
        data={"csrf_token": token, "match_id": unrelated["id"], "reason": "Verkeerde treffer"},
    )
    assert refused.status_code == 303
    assert "BVH-2026-00999" not in coordinator.get(case_path).get_data(as_text=True)

    from sqlalchemy import select

    from gateway.audit.models import AuditEntryRow

    with app.extensions["ketenpoort"].db.session() as s:
        entries = [bytes(d).decode() for d in s.execute(select(AuditEntryRow.data)).scalars()]
    links = [e for e in entries if case_id in e and '"step":"link"' in e.replace(" ", "")]
    assert len(links) == 1 and third in links[0] and first not in links[0]


def test_a_review_says_it_succeeded_in_the_success_style(app: Flask, desk: MatchDesk) -> None:
    """ "De treffer is bijgewerkt." is no error: the success alert, not the red one."""
    desk.two_signals()
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")
    path = f"/matches/{_match_id(coordinator.get('/matches').get_data(as_text=True))}"
    token = csrf_token(coordinator, path)
    coordinator.post(f"{path}/review", data={"csrf_token": token, "state": "confirmed"})
    page = coordinator.get(path).get_data(as_text=True)
    alert = re.search(
        r'<div class="utrecht-alert ([^"]+)"[^>]*>\s*(.*?)</div>\s*</div>', page, re.S
    )
    assert alert and "De treffer is bijgewerkt." in alert.group(2)
    assert "utrecht-alert--ok" in alert.group(1) and "error" not in alert.group(1)
    assert "Gelukt" in alert.group(2)


def _rename(app: Flask, names: dict[str, str]) -> None:
    from gateway.partners.models import Organisation

    with app.extensions["ketenpoort"].db.transaction() as session:
        for org_id, name in names.items():
            found = session.get(Organisation, org_id)
            assert found is not None
            found.name = name


def test_the_pages_name_the_organisations(app: Flask, desk: MatchDesk) -> None:
    """A coordinator and a privacy officer read an organisation's name, not its id; the
    id stays in a tooltip (and beside the name in the audit log, whose filter takes it).
    A disabled organisation keeps its name. The names are looked up once per page."""
    from sqlalchemy import event

    from gateway.actors import cli_actor
    from gateway.partners.registry import disable_organisation

    match, _first, _second = desk.two_signals()
    _rename(app, {"police": "Politie Oost-Nederland", "care": "Zorg Oost"})
    with app.extensions["ketenpoort"].db.transaction() as session:
        disable_organisation(session, "care", actor=cli_actor())
    coordinator = app.test_client()
    _signed_in(app, coordinator, "c.jansen", "coordinator")

    lookups: list[str] = []

    def statement(_c: Any, _cur: Any, text: str, *_rest: Any) -> None:
        if "organisations.name" in text:
            lookups.append(text)

    engine = app.extensions["ketenpoort"].db.engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        queue = coordinator.get("/matches").get_data(as_text=True)
        page = coordinator.get(f"/matches/{match['id']}").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert len(lookups) == 2  # one per page, not one per row

    assert '<span title="police">Politie Oost-Nederland</span>' in queue
    assert '<span title="care">Zorg Oost</span>' in queue  # disabled since, still named
    # the row's link, for a screen reader: the partners by name (in the signals' order)
    pair = "(Politie Oost-Nederland, Zorg Oost|Zorg Oost, Politie Oost-Nederland)"
    assert re.search(f"Treffer van {pair}, bijgewerkt", queue)
    for text in (queue, page):
        assert ">police<" not in text and ">care<" not in text
    cells = re.findall(r'<td class="utrecht-table__cell">(<span title="[^"]+">[^<]+</span>)', page)
    assert sorted(cells) == [
        '<span title="care">Zorg Oost</span>',
        '<span title="police">Politie Oost-Nederland</span>',
    ]

    officer = app.test_client()
    _signed_in(app, officer, "p.visser", "privacy-officer")
    log = officer.get("/audit?action=signal.create").get_data(as_text=True)
    assert '<span class="kp-muted">Politie Oost-Nederland (police)</span>' in log
    assert '<span class="kp-muted">Zorg Oost (care)</span>' in log
    filtered = officer.get("/audit?action=signal.create&organisation=police").get_data(as_text=True)
    assert "Politie Oost-Nederland (police)" in filtered and "Zorg Oost" not in filtered


def test_an_organisation_without_a_name_shows_its_id(app: Flask) -> None:
    """An id no organisation has (an old entry, a typo) shows as itself; two
    organisations of one name are told apart by their ids."""
    from gateway.web.labels import OrganisationNames, organisation_names

    names = OrganisationNames({"zorg-oost": "Zorg", "zorg-west": "Zorg", "politie": "Politie"})
    assert names.name("gone") == "gone" and names.label("gone") == "gone"
    assert not names.shows_id("gone") and not names.shows_id(None) and names.name(None) == ""
    assert names.label("politie") == "Politie" and not names.shows_id("politie")
    assert names.labels(["zorg-oost", "zorg-west", "zorg-oost", None]) == [
        "Zorg (zorg-oost)",
        "Zorg (zorg-west)",
    ]
    with app.test_request_context():
        assert organisation_names(["meldpunt", "gone", None]).names == {"meldpunt": "Meldpunt"}
        assert organisation_names([]).names == {}
