"""The demo's people can sign in at once with what the summary prints: a published
password (no forced change) and a TOTP code from the printed secret."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace
from pathlib import Path

import pyotp

from gateway.app import create_app
from gateway.demo.run import build, demo_password
from gateway.services import close_app


def test_demo_users_sign_in_with_the_printed_credentials(tmp_path: Path) -> None:
    instance = build(tmp_path / "demo", "127.0.0.1", 8080)
    users_file = tmp_path / "demo" / "users.json"
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    users = json.loads(users_file.read_text())
    assert {u["role"] for u in users} == {"coordinator", "privacy-officer", "professional"}
    professional = next(u for u in users if u["role"] == "professional")
    assert professional["organisation"] == "roc-van-twente"  # the demo school
    app = create_app(settings=replace(instance.settings, testing=True, background_jobs=False))
    try:
        for user in users:
            assert user["password"] == demo_password(user["name"])
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            response = client.post(
                "/login",
                data={
                    "csrf_token": token.group(1),
                    "username": user["name"],
                    "password": user["password"],
                    "otp": pyotp.TOTP(user["totpSecret"]).now(),
                },
            )
            assert response.status_code == 302 and response.headers["Location"] == "/"
            assert client.get("/").status_code == 200
    finally:
        close_app(app)
