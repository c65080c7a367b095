"""Browser fixtures: Debian's Chromium driven by Playwright, against a live gateway on
each database backend. Skipped (with the reason) only when /usr/bin/chromium is absent;
`.ci/run` installs it, so CI always runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, postgres_schema
from tests.web.live import CHROMIUM, CHROMIUM_ARGS, WebGateway, web_gateway


def backend_url(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ketenpoort.db'}"
        return
    with postgres_schema("w") as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebGateway]:
    """One gateway per module and backend, with the default time-outs."""
    directory = tmp_path_factory.mktemp(f"web-{backend}")
    for url in backend_url(backend, directory):
        with web_gateway(url, directory) as gateway:
            yield gateway


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live: WebGateway) -> Iterator[Any]:
    """A fresh browser profile that speaks Dutch, like the meldpunt's own machines."""
    context = browser.new_context(base_url=live.base_url, locale="nl-NL")
    page = context.new_page()
    yield page
    context.close()
