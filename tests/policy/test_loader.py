"""A broken policy names the file, the line and the field; a valid one has a stable digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
import yaml

from gateway.policy.loader import PolicyError, PolicyProblem, load_policy, parse_policy
from gateway.policy.schema import schema_text
from tests.conftest import ROOT

SOURCE = "policies/test.yaml"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th occurrence of `needle` in `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1


def problems(text: str) -> list[PolicyProblem]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, SOURCE)
    return caught.value.problems


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def test_shipped_policy_is_valid(policy_text: str) -> None:
    loaded = parse_policy(policy_text, SOURCE)
    assert loaded.policy.id == "twente-mensenhandel"
    assert set(loaded.policy.categories) == {
        "possible-victim",
        "possible-perpetrator",
        "concern",
        "test",
    }
    assert all(c.retention_days <= 730 for c in loaded.policy.categories.values())
    assert all("meldpunt" in c.required_recipients for c in loaded.policy.categories.values())


def test_out_of_range_value_names_field_and_line(policy_text: str) -> None:
    text = edit(policy_text, "retention_days: 730", "retention_days: 800")
    [problem] = problems(text)
    assert problem.field == "categories.possible-victim.retention_days"
    assert problem.line == line_of(text, "retention_days: 800")
    assert "730" in problem.message
    assert problem.file == SOURCE


def test_typo_in_a_key_is_an_unknown_field_and_a_missing_one(policy_text: str) -> None:
    text = edit(policy_text, "    retention_days: 365", "    retension_days: 365")
    found = {p.field: p for p in problems(text)}
    assert set(found) == {"categories.concern.retension_days", "categories.concern.retention_days"}
    assert found["categories.concern.retension_days"].line == line_of(text, "retension_days")
    assert "unknown field" in found["categories.concern.retension_days"].message
    # A missing field points at its parent, the category's own line.
    assert found["categories.concern.retention_days"].line == line_of(text, "  concern:")
    assert found["categories.concern.retention_days"].message == "required field is missing"


def test_unknown_action_in_a_rule_names_the_list_item(policy_text: str) -> None:
    text = edit(
        policy_text,
        "actions: [partner.manage, user.manage, key.manage]",
        "actions: [partner.manage, user.manage, keys.steal]",
    )
    [problem] = problems(text)
    index = next(
        i
        for i, rule in enumerate(yaml.safe_load(text)["rules"])
        if rule["id"] == "admin-manages-partners-users-keys"
    )
    assert problem.field == f"rules[{index}].actions[2]"
    assert problem.line == line_of(text, "keys.steal")


def test_meldpunt_must_receive_every_category(policy_text: str) -> None:
    text = edit(
        policy_text,
        "    retention_days: 365\n    required_recipients: [meldpunt]",
        "    retention_days: 365\n    required_recipients: [politie-oost]",
    )
    [problem] = problems(text)
    assert problem.field == "categories.concern.required_recipients"
    assert problem.line == line_of(text, "required_recipients: [politie-oost]")
    assert "meldpunt" in problem.message


def test_a_rule_cannot_give_an_admin_payloads(policy_text: str) -> None:
    text = edit(
        policy_text,
        "    who: {type: user, roles: [admin]}\n    actions: [partner.manage",
        "    who: {type: user, roles: [admin]}\n    actions: [payload.read, partner.manage",
    )
    [problem] = problems(text)
    assert problem.field.endswith(".actions[0]") and problem.field.startswith("rules[")
    assert "separation of duties" in problem.message
    assert problem.line == line_of(text, "actions: [payload.read, partner.manage")


def test_removing_payload_read_from_never_is_refused(policy_text: str) -> None:
    text = edit(
        policy_text, "    never: [payload.read, signal.create,", "    never: [signal.create,"
    )
    [problem] = problems(text)
    assert problem.field == "roles.privacy-officer.never"
    assert "payload.read" in problem.message


def test_unknown_role_key(policy_text: str) -> None:
    text = edit(policy_text, "  admin:\n    description: >-", "  superuser:\n    description: >-")
    found = {p.field: p for p in problems(text)}
    assert "roles.superuser" in found
    assert found["roles.superuser"].line == line_of(text, "superuser:")


def test_test_case_must_name_an_existing_rule(policy_text: str) -> None:
    text = edit(
        policy_text,
        "expect: {effect: allow, rule: partner-submits-signal}",
        "expect: {effect: allow, rule: partner-submit-signal}",
    )
    [problem] = problems(text)
    assert problem.field == "tests[0].expect.rule"
    assert problem.line == line_of(text, "rule: partner-submit-signal}")


def test_yaml_syntax_error_names_the_line(policy_text: str) -> None:
    text = edit(policy_text, "  concern:\n", "  concern: [\n")
    [problem] = problems(text)
    assert problem.line is not None and problem.line >= line_of(text, "  concern: [")
    assert "not valid YAML" in problem.message


def test_duplicate_keys_are_refused(policy_text: str) -> None:
    text = edit(
        policy_text,
        "    retention_days: 365\n",
        "    retention_days: 365\n    retention_days: 30\n",
    )
    [problem] = problems(text)
    assert "duplicate key 'retention_days'" in problem.message
    assert problem.line == line_of(text, "retention_days: 30")


def test_dates_stay_strings(policy_text: str) -> None:
    loaded = parse_policy(edit(policy_text, 'version: "2026.1"', "version: 2026-01-01"))
    assert loaded.policy.version == "2026-01-01"
    json.dumps(loaded.document)  # still JSON


def test_the_error_message_is_one_line_naming_file_line_field(
    policy_text: str, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    text = edit(policy_text, "retention_days: 730", "retention_days: many")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"line {line_of(text, 'retention_days: many')}" in message
    assert "categories.possible-victim.retention_days" in message


def test_missing_file() -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: file not found"):
        load_policy("nope.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="mapping"):
        parse_policy("- just\n- a list\n")


def test_digest_is_sha256_of_rfc8785_of_the_document(policy_text: str) -> None:
    loaded = parse_policy(policy_text)
    document = yaml.safe_load(policy_text)
    assert loaded.digest == hashlib.sha256(rfc8785.dumps(document)).hexdigest()
    assert loaded.canonical == rfc8785.dumps(document)
    # Comments and layout do not change the agreement, so they do not change the digest.
    reformatted = "# another comment\n" + yaml.safe_dump(document, allow_unicode=True, width=60)
    assert parse_policy(reformatted).digest == loaded.digest
    # Any change of content does.
    assert parse_policy(edit(policy_text, "retention_days: 365", "retention_days: 364")).digest != (
        loaded.digest
    )


def test_json_schema_file_is_up_to_date() -> None:
    """Regenerate with `ketenpoort policy schema policies/schema.json`."""
    assert (ROOT / "policies" / "schema.json").read_text(encoding="utf-8") == schema_text()


def test_shipped_policy_validates_against_the_json_schema(policy_text: str) -> None:
    import jsonschema

    schema = json.loads((ROOT / "policies" / "schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(policy_text), schema)
