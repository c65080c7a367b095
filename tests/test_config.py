"""Settings come from KETENPOORT_* and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import ConfigError, load_settings


def test_defaults_are_the_contract() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///var/ketenpoort.db"
    assert settings.keys_dir == Path("keys")
    assert settings.policy == Path("policies/twente.yaml")
    assert settings.issuer == "http://127.0.0.1:8080"
    assert settings.master_key is None


def test_environment_is_read() -> None:
    settings = load_settings(
        {
            "KETENPOORT_DATABASE_URL": "postgresql+psycopg://u@db:5432/k",
            "KETENPOORT_KEYS_DIR": "/srv/keys",
            "KETENPOORT_POLICY": "/srv/policy.yaml",
            "KETENPOORT_ISSUER": "https://ketenpoort.example.nl",
            "KETENPOORT_MASTER_KEY": "A" * 43,
        }
    )
    assert settings.database_url.startswith("postgresql+psycopg")
    assert settings.keys_dir == Path("/srv/keys")
    assert settings.issuer == "https://ketenpoort.example.nl"
    assert settings.master_key == bytes(32)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KETENPOORT_ISSUER", "ketenpoort.example.nl"),
        ("KETENPOORT_ISSUER", "https://ketenpoort.example.nl/"),
        ("KETENPOORT_ISSUER", "ftp://x"),
        ("KETENPOORT_DATABASE_URL", "not a url"),
        ("KETENPOORT_DATABASE_URL", "mysql://root@localhost/k"),
        ("KETENPOORT_DATABASE_URL", "postgresql+psycopg2://u@h/db"),
        ("KETENPOORT_MASTER_KEY", "tooshort"),
        ("KETENPOORT_MASTER_KEY", "!!!notbase64!!!"),
        ("KETENPOORT_LOG_FORMAT", "xml"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({variable: value})
    message = str(excinfo.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_master_key_value_is_never_in_the_message() -> None:
    secret = "c2VjcmV0LW1hc3Rlci1rZXk"
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"KETENPOORT_MASTER_KEY": secret})
    assert secret not in str(excinfo.value)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, overrides={"issuerr": "x"})


@given(st.text())
def test_issuer_parser_never_crashes(value: str) -> None:
    try:
        settings = load_settings({"KETENPOORT_ISSUER": value})
    except ConfigError as exc:
        assert str(exc).startswith("KETENPOORT_ISSUER:")
    else:
        assert settings.issuer.startswith(("http://", "https://")) or value == ""


def test_background_jobs_switch_and_its_old_name() -> None:
    """`KETENPOORT_BACKGROUND_JOBS` says what it switches; the old name still works."""
    assert load_settings({}).background_jobs is True
    assert load_settings({"KETENPOORT_BACKGROUND_JOBS": "false"}).background_jobs is False
    assert load_settings({"KETENPOORT_AUDIT_SEQUENCER": "false"}).background_jobs is False
    both = {"KETENPOORT_BACKGROUND_JOBS": "true", "KETENPOORT_AUDIT_SEQUENCER": "false"}
    assert load_settings(both).background_jobs is True
    with pytest.raises(ConfigError, match="KETENPOORT_AUDIT_SEQUENCER"):
        load_settings({"KETENPOORT_AUDIT_SEQUENCER": "maybe"})
