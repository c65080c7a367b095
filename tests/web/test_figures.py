"""The figures page in a real browser: this year's demo-like signals as charts and
tables, every small cell shown as "< 5", the CSV export, the officer's oversight."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.db import Database
from gateway.matching.models import MatchRow
from gateway.signals.models import SignalRow
from tests.web.flows import sign_in
from tests.web.live import WebGateway

#: (partner kind, category, how many) — like the demo: mostly small numbers.
SIGNALS = (
    ("police", "possible-victim", 9),
    ("police", "possible-perpetrator", 2),
    ("care", "concern", 6),
    ("care", "possible-victim", 3),
    ("education", "concern", 1),
    ("municipality", "concern", 2),
)


@pytest.fixture(scope="module")
def seeded(live: WebGateway) -> WebGateway:
    now = datetime.now(UTC).replace(month=1, day=10)
    database = Database(live.settings.database_url)
    try:
        with database.transaction() as session:
            for kind, category, count in SIGNALS:
                for _ in range(count):
                    session.add(
                        SignalRow(
                            id=str(uuid.uuid4()),
                            organisation=f"demo-{kind}",
                            organisation_kind=kind,
                            reference=uuid.uuid4().hex[:10],
                            category=category,
                            linkage_keys="bsn",
                            created_at=now,
                            expires_at=now + timedelta(days=365),
                        )
                    )
            for _ in range(3):
                session.add(MatchRow(id=str(uuid.uuid4()), created_at=now, updated_at=now))
    finally:
        database.dispose()
    return live


def _cell(page: Any, table: Any, row: str, column: int) -> str:
    line = table.locator("tr", has=page.get_by_role("rowheader", name=row, exact=True))
    text: str = line.locator("td").nth(column).inner_text()
    return text.strip()


def test_the_coordinator_sees_the_year_with_small_cells_suppressed(
    page: Any, seeded: WebGateway
) -> None:
    sign_in(page, seeded.person("coordinator"))
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Cijfers").click()
    page.wait_for_url("**/figures")
    assert page.get_by_role("heading", level=1).inner_text() == "Cijfers"
    kinds = page.get_by_role("table", name="Signalen per soort partner")
    assert _cell(page, kinds, "Politie", 0) == "11"
    assert _cell(page, kinds, "Zorg", 0) == "9"
    for small in ("Onderwijs", "Gemeente", "Justitie"):
        assert _cell(page, kinds, small, 0) == "< 5"
    overview = page.get_by_role("table", name="Overzicht")
    assert _cell(page, overview, "Treffers", 0) == "< 5"
    assert _cell(page, overview, "Signalen", 0) == "23"
    # every cell on the page is a number of at least 5, "< 5", "x" or a heading
    for text in page.locator("td.utrecht-table__cell").all_inner_texts():
        assert text in ("< 5", "x") or int(text) >= 5, text
    assert page.locator("svg.kp-chart").count() >= 3
    assert page.locator("[style]").count() == 0
    assert page.get_by_role("heading", name="Toezicht (privacyfunctionaris)").count() == 0
    page.screenshot(path="/tmp/figures.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Downloaden als CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("period,dimension,value,count")
    assert ",signals.partnerKind,education,< 5" in text
    actions = [e["detail"].get("format") for e in seeded.audit() if e["action"] == "figures.read"]
    assert "html" in actions and "csv" in actions


def test_the_privacy_officer_sees_quarters_and_the_oversight(page: Any, seeded: WebGateway) -> None:
    sign_in(page, seeded.person("privacy-officer"))
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/figures")
    page.get_by_label("kwartaal").check()
    page.get_by_role("button", name="Cijfers tonen").click()
    page.wait_for_url("**/figures?**by=quarter**")
    year = datetime.now(UTC).year
    overview = page.get_by_role("table", name="Overzicht")
    assert f"{year}-Q1" in overview.inner_text()
    assert page.get_by_role("heading", name="Toezicht (privacyfunctionaris)").is_visible()
    page.get_by_label("Van", exact=True).fill(f"{year}-02-01")
    page.get_by_role("button", name="Cijfers tonen").click()
    assert "kunnen geen cijfers worden gepubliceerd" in page.get_by_role("alert").inner_text()
