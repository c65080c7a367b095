"""Read a policy file: YAML → validated `Policy`, its canonical bytes and digest.

An invalid policy raises `PolicyError` naming the file, the line and the field, because
the person fixing it is a privacy officer with an editor, not a developer with a
debugger. Pydantic reports a path of keys; we walk PyYAML's node tree along that path to
find the line. Dates stay strings and duplicate keys are errors: the canonical JSON
(RFC 8785) of exactly what was written is what the digest covers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gateway.config import ConfigError
from gateway.policy.schema import Loc, Policy, semantic_errors


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file, where a person can find it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line is not None else ""
        where = f"field {self.field}: " if self.field else ""
        return f"{self.file}{line}: {where}{self.message}"


class PolicyError(ConfigError):
    """The policy file is missing or invalid; the message names file, line and field."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        first = str(problems[0])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid policy {first}{more}")


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    document: dict[str, Any]
    canonical: bytes  # RFC 8785 JSON of the document as written
    digest: str  # SHA-256 of `canonical`, lowercase hex
    source: str


class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps (they are not JSON) and without duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def field_path(loc: Loc) -> str:
    """`("rules", 3, "actions", 0)` → `rules[3].actions[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the node at `loc`, or of the deepest ancestor that exists."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in loc:
        if part == "[key]":
            return line  # the key node's line was taken when descending
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (not part of the policy format; a typo?)"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"])


def parse_policy(text: str, source: str = "<policy>") -> LoadedPolicy:
    """Validate policy text; raise `PolicyError` listing every problem found."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader refuses control characters already here
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PolicyError(
            [PolicyProblem(source, line, "", f"not valid YAML: {exc.problem}")]
        ) from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError: a character YAML does not allow
        raise PolicyError([PolicyProblem(source, 1, "", f"not valid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return _validate(data, root, source)


def parse_document(data: Any, source: str = "<policy>") -> LoadedPolicy:
    """Validate an already parsed document, e.g. a stored canonical version (no lines)."""
    return _validate(data, None, source)


def _validate(data: Any, root: yaml.Node | None, source: str) -> LoadedPolicy:
    if not isinstance(data, dict):
        raise PolicyError([PolicyProblem(source, 1, "", "a policy is a YAML mapping of keys")])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = [
            PolicyProblem(source, line_of(root, e["loc"]), field_path(e["loc"]), _message(e))
            for e in exc.errors(include_url=False)
        ]
        raise PolicyError(problems) from None
    found = semantic_errors(policy)
    if found:
        raise PolicyError(
            [
                PolicyProblem(source, line_of(root, e.loc), field_path(e.loc), e.message)
                for e in found
            ]
        )
    try:
        canonical: bytes = rfc8785.dumps(data)
    except Exception as exc:  # a value JSON cannot hold, e.g. a float that is not finite
        raise PolicyError([PolicyProblem(source, 1, "", f"not JSON-compatible: {exc}")]) from None
    return LoadedPolicy(
        policy=policy,
        document=data,
        canonical=canonical,
        digest=hashlib.sha256(canonical).hexdigest(),
        source=source,
    )


def load_policy(path: Path | str) -> LoadedPolicy:
    """Read and validate the policy file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([PolicyProblem(str(path), None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyProblem(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_policy(text, str(path))
