"""`names_ym` in the tiers: same names with a typo in one of day and month is strong;
the same names born in the same year whose day and month both differ are not a match."""

from __future__ import annotations

from gateway.matching.scoring import assess
from gateway.pseudonyms.matchkeys import derive_linkage_keys


def _keys(dob: str) -> dict[str, frozenset[str]]:
    return derive_linkage_keys({"familyName": "Bakker", "givenNames": "Anna", "dateOfBirth": dob})


def test_a_typo_in_the_day_is_strong_through_names_ym() -> None:
    found = assess(_keys("2010-05-03"), _keys("2010-05-08"))
    assert "names_ym" in found.agreed
    assert found.tier == "strong"


def test_a_typo_in_the_month_is_strong_through_names_ym() -> None:
    found = assess(_keys("2010-05-03"), _keys("2010-06-03"))
    assert "names_ym" in found.agreed
    assert found.tier == "strong"


def test_namesakes_born_the_same_year_on_another_day_and_month_are_no_match() -> None:
    found = assess(_keys("2010-05-03"), _keys("2010-09-21"))
    assert "names_ym" not in found.agreed and "names_year" in found.agreed
    assert found.tier is None
