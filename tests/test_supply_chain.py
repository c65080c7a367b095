"""The lock files cover pyproject.toml, and the Dockerfile installs from them (issue 17).

`make lock` regenerates them; this fails when a dependency was added to pyproject.toml
without locking it again, so the image and CI would not install what the code needs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
    re.M,
)


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    pins = {canonicalize_name(m.group(1)): m.group(2) for m in PIN.finditer(text)}
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(pins) == len(requirement_lines), f"{name}: a pin without hashes"
    return pins


def _declared(group: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(line) for line in found]


def test_runtime_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = _pins("requirements.lock")
    for requirement in _declared(None):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_dev_lock_pins_runtime_and_dev_dependencies_alike() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    for requirement in _declared(None) + _declared("dev"):
        name = canonicalize_name(requirement.name)
        assert name in dev, f"{name} is not in requirements-dev.lock: run `make lock`"
        assert requirement.specifier.contains(dev[name], prereleases=True), (name, dev[name])
    differ = {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v}
    assert not differ, f"the two lock files disagree: {differ}"


def test_build_lock_pins_the_build_backend() -> None:
    build = _pins("requirements-build.lock")
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for line in system:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in build and requirement.specifier.contains(build[name]), name


def test_dockerfile_installs_the_locked_dependencies_and_the_built_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --require-hashes --no-deps -r requirements-build.lock" in dockerfile
    assert "pip wheel --no-deps --no-build-isolation --wheel-dir /dist ." in dockerfile
    assert "pip install --no-deps /tmp/dist/ketenpoort-*.whl" in dockerfile
    assert "pip check" in dockerfile
    for install in re.findall(r"pip install [^\n&]*", dockerfile):  # nothing unpinned
        assert "--require-hashes" in install or "--no-deps /tmp/dist/" in install, install
