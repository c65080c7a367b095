"""The web layer without a browser: what the API keeps (no cookies, no CSRF), the
cookie key, safe redirects, and translations that ship complete with the package."""

from __future__ import annotations

import fnmatch
import io
import re
import secrets
import tomllib
from dataclasses import replace
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.services import close_app

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "gateway" / "web"
PO = WEB / "translations" / "nl" / "LC_MESSAGES" / "messages.po"


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def test_the_api_sets_no_cookie_and_takes_no_csrf_token(client: FlaskClient) -> None:
    for path in ("/v1/openapi.json", "/docs", "/healthz"):
        assert "Set-Cookie" not in client.get(path).headers, path
    response = client.post("/v1/signals", json={})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert token.mimetype == "application/json" and "error" in token.get_json()


def test_the_language_switch_redirects_only_within_the_site(client: FlaskClient) -> None:
    token = csrf_token(client)
    for target, expected in [
        ("/matches", "/matches"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/cases/a\nb", "/"),  # a redirect cannot carry a control character (was a 500)
        ("/x" * 20_000, "/"),  # nor a huge path (it tried every shorter prefix: seconds)
    ]:
        response = client.post(
            "/language", data={"csrf_token": token, "lang": "en", "next": target}
        )
        assert response.status_code == 302 and response.headers["Location"] == expected
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page


CASE = "/cases/6f1c2a4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f"
MATCH = "/matches/0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
#: A form's POST-only address -> the page the form lives on (a GET page).
FORM_PAGES = {
    f"{CASE}/shares": CASE,
    f"{CASE}/signals": CASE,
    f"{CASE}/status": CASE,
    f"{CASE}/notes": CASE,
    f"{CASE}/assignee": CASE,
    f"{CASE}/signals/6f1c2a4e-0000-4c3d-9e8f-0a1b2c3d4e5f/unlink": CASE,
    f"{MATCH}/dismissal": MATCH,
    f"{MATCH}/review": MATCH,
    "/audit/subject/clear": "/audit",
    "/logout": "/",
    "/language": "/",
}


def test_the_language_switch_never_goes_to_a_post_only_address(client: FlaskClient) -> None:
    """After a refused form the address is the form's POST-only one: switching the
    language goes to the page the form lives on, never a 405 problem."""
    token = csrf_token(client)
    for target, expected in [*FORM_PAGES.items(), ("/v1/signals", "/"), ("/healthz", "/")]:
        response = client.post(
            "/language", data={"csrf_token": token, "lang": "en", "next": target}
        )
        assert response.status_code == 302, target
        assert response.headers["Location"] == expected, target


def test_a_get_on_a_forms_address_goes_to_its_page(client: FlaskClient) -> None:
    """A reload of a POST-only web address (from the address bar) is no raw JSON: it goes
    to the page the form lives on. The API still answers a wrong method as a problem."""
    for target, expected in FORM_PAGES.items():
        response = client.get(target)
        assert response.status_code == 303, target
        assert response.headers["Location"] == expected, target
        assert response.mimetype == "text/html", target
    api = client.get("/v1/cases/x/shares")
    assert api.mimetype == "application/problem+json"
    # a newline in the address (percent-encoded) goes to the start page, no 500
    for target in ("/cases/a%0ab/shares", "/matches/a%0d%0ab/review"):
        response = client.get(target)
        assert response.status_code == 303 and response.headers["Location"] == "/", target


def test_unknown_language_and_accept_language(client: FlaskClient) -> None:
    assert '<html lang="nl">' in client.get("/login").get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.get_data(as_text=True)
    german = client.get("/login", headers={"Accept-Language": "de-DE"})
    assert '<html lang="nl">' in german.get_data(as_text=True)


def test_the_cookie_key_comes_from_the_master_key(app: Flask, settings: Settings) -> None:
    again = create_app(settings=settings)
    other = create_app(settings=replace(settings, master_key=secrets.token_bytes(32)))
    try:
        assert app.secret_key == again.secret_key
        assert app.secret_key != other.secret_key
        assert isinstance(app.secret_key, bytes) and len(app.secret_key) == 32
    finally:
        close_app(again)
        close_app(other)


def _texts(messages: object) -> dict[object, tuple[str, ...]]:
    """id → its translation(s); a plural's id is (singular, plural), its strings a list."""
    found: dict[object, tuple[str, ...]] = {}
    for m in messages:  # type: ignore[attr-defined]
        if m.id:
            key = tuple(m.id) if isinstance(m.id, list | tuple) else m.id
            texts = m.string if isinstance(m.string, list | tuple) else (m.string,)
            found[key] = tuple(texts)
    return found


def test_every_string_is_translated_and_the_mo_is_current() -> None:
    catalog = read_po(PO.open("rb"))
    extracted = {
        tuple(message) if isinstance(message, list | tuple) else message
        for _, _, message, _, _ in extract_from_dir(
            str(WEB),
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "_l": None, "ngettext": (1, 2)},
        )
    }
    translated = _texts(catalog)
    missing = sorted((m for m in extracted if not all(translated.get(m) or ("",))), key=str)
    assert missing == [], "run `make translations` and translate these in messages.po"
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    shipped = read_mo((PO.parent / "messages.mo").open("rb"))
    assert _texts(shipped) == translated, "run `make translations`"


def test_package_data_ships_the_web_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    gateway = ROOT / "gateway"
    files = [
        p.relative_to(gateway).as_posix()
        for folder in ("web/templates", "web/static", "web/translations")
        for p in (gateway / folder).rglob("*")
        if p.is_file() and p.suffix in {".html", ".css", ".mo", ".md"}
    ]
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unshipped == []


def _add_user(app: Flask, name: str, role: str = "coordinator") -> tuple[str, str]:
    from gateway.actors import cli_actor
    from gateway.users.service import add_user

    svc = app.extensions["ketenpoort"]
    with svc.db.transaction() as session:
        created = add_user(session, svc.keys, name=name, role=role, actor=cli_actor())
    return created.one_time_password, created.totp_secret


def _cookie(app: Flask, client: FlaskClient) -> dict[str, object]:
    cookie = client.get_cookie("ketenpoort_session")
    if cookie is None:
        return {}
    data: dict[str, object] = app.session_interface.get_signing_serializer(app).loads(  # type: ignore[attr-defined]
        cookie.value
    )
    return data


def test_the_password_page_needs_a_fresh_one_time_sign_in(app: Flask, client: FlaskClient) -> None:
    import pyotp

    assert client.get("/login/password").headers["Location"] == "/login"
    password, secret = _add_user(app, "f.de.vries")
    token = csrf_token(client)
    before = _cookie(app, client)
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": "f.de.vries",
            "password": password,
            "otp": pyotp.TOTP(secret).now(),
        },
    )
    assert response.headers["Location"] == "/login/password"
    pending = _cookie(app, client)
    assert "sid" not in pending and pending.get("csrf_token") != before.get("csrf_token")
    assert client.get("/").headers["Location"] == "/login"  # not signed in yet
    token = csrf_token(client, "/login/password")
    new = "een-eigen-wachtwoord"
    response = client.post(
        "/login/password",
        data={"csrf_token": token, "new_password": new, "confirm_password": new},
    )
    assert response.headers["Location"] == "/"
    signed_in = _cookie(app, client)
    assert isinstance(signed_in.get("sid"), str) and "pending" not in signed_in
    # the page is gone once the password is changed
    assert client.get("/login/password").headers["Location"] == "/login"


def _signed_in(app: Flask, client: FlaskClient, name: str, role: str) -> None:
    import pyotp

    password, secret = _add_user(app, name, role)
    new = "een-eigen-wachtwoord"
    client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": name,
            "password": password,
            "otp": pyotp.TOTP(secret).now(),
        },
    )
    client.post(
        "/login/password",
        data={
            "csrf_token": csrf_token(client, "/login/password"),
            "new_password": new,
            "confirm_password": new,
        },
    )


def test_match_pages_answer_html_errors(app: Flask, client: FlaskClient) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    empty = client.get("/matches")
    assert empty.status_code == 200 and "Er zijn geen treffers" in empty.get_data(as_text=True)
    for path in ("/matches/unknown", "/matches/" + "x" * 300):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.mimetype == "text/html", path
        assert "Pagina niet gevonden" in missing.get_data(as_text=True)
    officer = app.test_client()
    _signed_in(app, officer, "p.visser", "privacy-officer")
    assert officer.get("/matches/unknown").status_code == 403  # the role first, then the match


def test_every_flash_category_has_its_own_style(app: Flask) -> None:
    """Each category the pages flash: an error is red, success green, info blue; an
    unknown one is never shown as an error."""
    from flask import flash, render_template_string

    used = set()
    for source in WEB.glob("*.py"):
        used |= set(re.findall(r'flash\((?:[^()]|\([^()]*\))*?,\s*"(\w+)"\)', source.read_text()))
    assert used == {"info", "success", "error"}, used
    expected = {"info": "info", "success": "ok", "error": "error", "other": "info"}
    for category, style in expected.items():
        with app.test_request_context("/"):
            flash("Bericht", category)
            page = render_template_string('{% extends "web/base.html" %}')
        assert f"utrecht-alert--{style}" in page, category


def test_the_session_keep_alive_answers_json_or_a_signed_out_problem(
    app: Flask, client: FlaskClient
) -> None:
    # not signed in (a CSRF token of the login page): 401 problem+json `signed-out`
    token = csrf_token(client)
    refused = client.post("/session", headers={"X-CSRFToken": token})
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json(force=True)
    assert problem["type"].endswith("/problems/signed-out") and problem["status"] == 401
    # without the CSRF header: refused as every web POST without its token
    assert client.post("/session").status_code == 400
    _signed_in(app, client, "c.jansen", "coordinator")
    kept = client.post("/session", headers={"X-CSRFToken": csrf_token(client, "/")})
    assert kept.status_code == 200
    body = kept.get_json()
    assert body["signedIn"] is True and body["extendable"] is True
    assert 0 < body["expiresIn"] <= app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
