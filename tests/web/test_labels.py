"""The match pages' words for linkage key families and for what agreed."""

from __future__ import annotations

from flask import Flask

from gateway.pseudonyms.matchkeys import LINKAGE_FAMILIES
from gateway.web.labels import LINKAGE_KEY_NAMES, agreement


def said(app: Flask, families: set[str], language: str = "nl") -> list[str]:
    with app.test_request_context(headers={"Accept-Language": language}):
        return [str(a) for a in agreement(families)]


def test_every_family_has_a_dutch_name(app: Flask) -> None:
    assert set(LINKAGE_KEY_NAMES) == set(LINKAGE_FAMILIES)
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        dutch = {family: str(name) for family, name in LINKAGE_KEY_NAMES.items()}
    with app.test_request_context(headers={"Accept-Language": "en"}):
        english = {family: str(name) for family, name in LINKAGE_KEY_NAMES.items()}
    assert all(dutch[f] != english[f] for f in LINKAGE_FAMILIES if f != "bsn")


def test_agreement_names_the_identifiers(app: Flask) -> None:
    exact = {"bsn", "name_dob", "del_dob", "given_dob", "names", "names_year"}
    assert said(app, exact) == ["BSN", "achternaam", "voornaam", "geboortedatum"]
    typo = {"del_dob", "phon_dob", "given_dob", "xname_dob"}
    assert said(app, typo) == ["achternaam, bijna", "voornaam", "geboortedatum"]
    assert said(app, typo, "en") == ["family name, nearly", "given name", "date of birth"]
    assert said(app, {"names", "names_year", "names_ym"}) == [
        "achternaam",
        "voornaam",
        "geboortejaar en -maand of -dag",
    ]
    assert said(app, {"dm_swap"}) == ["geboortedatum, dag en maand verwisseld"]
    assert said(app, {"names_del"}) == ["achternaam, bijna", "voornaam, bijna"]


def test_kinds_and_categories_have_one_map_and_a_capitalised_form(app: Flask) -> None:
    """One map per code list (gateway.web.labels); where a name opens a label or a table
    row (figures, intake, approvals) it takes a capital, in either language."""
    from gateway.partners.kinds import KINDS
    from gateway.web import cases, figures, intake, reads
    from gateway.web.labels import CATEGORY_NAMES, KIND_NAMES, capital_name, capitalised

    assert set(KIND_NAMES) == set(KINDS)
    assert figures.KIND_NAMES is KIND_NAMES and cases.KIND_NAMES is KIND_NAMES
    assert figures.CATEGORY_NAMES is CATEGORY_NAMES is intake.CATEGORY_NAMES
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        assert capitalised(KIND_NAMES)["meldpunt"] == "Meldpunt"
        assert str(KIND_NAMES["police"]) == "politie"
        assert capital_name(CATEGORY_NAMES, "possible-victim") == "Mogelijk slachtoffer"
        assert reads.category_label("concern") == "Zorgsignaal"
        assert capital_name(CATEGORY_NAMES, "unknown-code") == "unknown-code"
        assert capital_name(CATEGORY_NAMES, None) == ""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert capitalised(KIND_NAMES)["meldpunt"] == "Report desk"
        assert capital_name(CATEGORY_NAMES, "possible-perpetrator") == "Possible perpetrator"
