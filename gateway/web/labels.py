"""Names of the API's codes that more than one page shows (translated when shown), and
the names of the organisations a page shows."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from gateway.matching.scoring import (
    FAMILY_NAME_EVIDENCE,
    FULL_DATE_FAMILIES,
    GIVEN_NAME_EVIDENCE,
)
from gateway.partners import registry
from gateway.pseudonyms.matchkeys import FAMILY_BSN
from gateway.services import db_session

#: A signal's status.
SIGNAL_STATUS_NAMES = {
    "active": _l("active"),
    "withdrawn": _l("withdrawn"),
    "expired": _l("expired"),
}
#: A signal's category, as a table cell shows it (`capitalised` where a name opens a
#: label or a table's row: "Mogelijk slachtoffer").
CATEGORY_NAMES = {
    "possible-victim": _l("possible victim"),
    "possible-perpetrator": _l("possible perpetrator"),
    "concern": _l("concern"),
}
#: An organisation's kind (`gateway.partners.kinds`), in running text ("Zorg Oost
#: (zorg)"); `capitalised` in the figures' tables.
KIND_NAMES = {
    "police": _l("police"),
    "justice": _l("justice"),
    "care": _l("care"),
    "education": _l("education"),
    "municipality": _l("municipality"),
    "meldpunt": _l("report desk"),
}


def capital(name: object) -> str:
    """A name, translated, with a capital first letter: "Mogelijk slachtoffer"."""
    text = str(name)
    return text[:1].upper() + text[1:]


def capitalised(names: Mapping[str, Any]) -> dict[str, str]:
    """A map of names with capital first letters, translated now (in a request)."""
    return {code: capital(name) for code, name in names.items()}


def capital_name(names: Mapping[str, Any], code: str | None) -> str:
    """The code's name with a capital first letter; an unknown code as it is."""
    name = names.get(code or "")
    return capital(name) if name is not None else code or ""


#: What each linkage key family means, for the match page (the API keeps the codes).
LINKAGE_KEY_NAMES = {
    "bsn": _l("BSN"),
    "name_dob": _l("family name + date of birth"),
    "del_dob": _l("family name with one typo + date of birth"),
    "phon_dob": _l("family name that sounds the same + date of birth"),
    "part_dob": _l("part of a double family name + date of birth"),
    "given_dob": _l("first given name + date of birth"),
    "xname_dob": _l("one name, in either field + date of birth"),
    "swap_dob": _l("given and family name swapped + date of birth"),
    "init_dob": _l("family name + first initial + date of birth"),
    "fgi_dob": _l("first letter of the family name + first given name + date of birth"),
    "names_year": _l("names + year of birth"),
    "names_ym": _l("names + year and month or day of birth"),
    "dm_swap": _l("name + date of birth with day and month swapped"),
    "names": _l("names, without date of birth"),
    "names_del": _l("names with one typo, without date of birth"),
}

# Which identifiers an agreement speaks for: the matching rules' evidence sets
# (`gateway.matching.scoring`), of which these families hold the value as written (the
# rest of a set agrees only nearly: deletion neighbours, sound, parts, initials).
_FAMILY_EXACT = {"name_dob", "names", "names_year", "names_ym", "init_dob", "swap_dob"}
_FAMILY_NEAR = FAMILY_NAME_EVIDENCE - _FAMILY_EXACT
_GIVEN_EXACT = {"given_dob", "names", "names_year", "names_ym", "swap_dob", "fgi_dob"}
_GIVEN_NEAR = GIVEN_NAME_EVIDENCE - _GIVEN_EXACT


def agreement(families: Collection[str]) -> list[LazyString]:
    """The identifiers that agree, from the families that did: what a coordinator
    needs first ("BSN, family name, date of birth"), before the families themselves."""
    agreed = set(families)
    found: list[LazyString] = []
    if "bsn" in agreed:
        found.append(_l("BSN"))
    if agreed & _FAMILY_EXACT:
        found.append(_l("family name"))
    elif agreed & _FAMILY_NEAR:
        found.append(_l("family name, nearly"))
    if agreed & _GIVEN_EXACT:
        found.append(_l("given name"))
    elif agreed & _GIVEN_NEAR:
        found.append(_l("given name, nearly"))
    if agreed.intersection(FULL_DATE_FAMILIES):
        found.append(_l("date of birth"))
    elif "dm_swap" in agreed:
        found.append(_l("date of birth, day and month swapped"))
    elif "names_ym" in agreed:
        found.append(_l("year and month or day of birth"))
    elif "names_year" in agreed:
        found.append(_l("year of birth"))
    return found


def supplied(families: Collection[str]) -> list[LazyString]:
    """The identifiers a signal was sent with, from the families it has: beside what
    agreed, it tells a date of birth one sender did not know from one that differs."""
    has = set(families)
    found: list[LazyString] = []
    if FAMILY_BSN in has:
        found.append(_l("BSN"))
    if has & FAMILY_NAME_EVIDENCE:
        found.append(_l("family name"))
    if has & GIVEN_NAME_EVIDENCE:
        found.append(_l("given name"))
    if has.intersection(FULL_DATE_FAMILIES):
        found.append(_l("date of birth"))
    return found


#: An audit entry's action (the decided policy action), for the privacy officer's pages.
ACTION_NAMES = {
    "signal.create": _l("Signal submitted"),
    "signal.withdraw": _l("Signal withdrawn"),
    "signal.expire": _l("Signal erased after its retention"),
    "signal.read": _l("Signal read by its sender"),
    "matching.update": _l("Compared with other signals"),
    "case.write": _l("Case work"),
    "case.share": _l("Shared with partners"),
    "payload.read": _l("Payload read"),
    "subject.search": _l("Subject search"),
    "subject.report": _l("Data-subject report"),
    "match.read": _l("Matches read"),
    "notification.read": _l("Notifications read"),
    "signal.list": _l("Own signals listed"),
    "directory.read": _l("Directory read"),
    "policy.read": _l("Policy read"),
    "audit.read": _l("Audit log read"),
    "audit.export": _l("Audit log exported"),
    "figures.read": _l("Figures read"),
    "oprf.evaluate": _l("Blind pseudonyms evaluated"),
    "token.issue": _l("Access token issued"),
    "request.refuse": _l("Request refused"),
    "alert.raised": _l("Alert raised"),
    "alert.handle": _l("Alert marked handled"),
    "user.sign-in": _l("Signed in"),
    "user.sign-out": _l("Signed out"),
    "user.lockout": _l("Account locked"),
    "user.password-change": _l("Password changed"),
    "user.session-timeout": _l("Session timed out"),
}
#: What a `case.write` or `case.share` entry did (its `detail.step`): one policy action
#: covers a coordinator's reading and changing of cases, the step tells them apart.
STEP_NAMES = {
    "create": _l("case created"),
    "read": _l("case opened"),
    "list": _l("list viewed"),
    "link": _l("signal linked"),
    "unlink": _l("signal unlinked"),
    "update": _l("case changed"),
    "note.add": _l("note added"),
    "note.read": _l("notes read"),
    "share": _l("shared"),
    "share.list": _l("shares viewed"),
    "share.request": _l("share requested"),
    "approval.request": _l("approval requested"),
    "approval.list": _l("approvals viewed"),
    "approval.approve": _l("approved"),
    "approval.refuse": _l("approval refused"),
}
#: An audit entry's outcome.
OUTCOME_NAMES = {"success": _l("done"), "denied": _l("refused"), "error": _l("failed")}


@dataclass(frozen=True)
class OrganisationNames:
    """Organisation ids (`politie-oost`) → the names a person knows them by ("Politie
    Oost-Nederland"), for one page: `organisation_names` looks them up once per request.
    The ids stay in form values, URLs and filters; an id without a name (no longer
    registered) shows as itself. Templates show them with `web/_organisations.html`."""

    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, org_id: str | None) -> str:
        """The name; the id itself where none is known."""
        return self.names.get(org_id or "") or (org_id or "")

    def shows_id(self, org_id: str | None) -> bool:
        """Whether the id says more than the name: it differs from it (not only in case)."""
        if not org_id:
            return False
        name = self.names.get(org_id)
        return name is not None and name.casefold() != org_id.casefold()

    def label(self, org_id: str | None) -> str:
        """The name, with the id in brackets where another organisation on the page has
        the same name ("Zorg Oost (zorg-oost-wijk)"), so that the two are told apart."""
        name = self.name(org_id)
        if self.shows_id(org_id) and self._shared(name):
            return f"{name} ({org_id})"
        return name

    def labels(self, org_ids: Iterable[str | None]) -> list[str]:
        """Each organisation's label once, in the order first met."""
        return list(dict.fromkeys(self.label(o) for o in org_ids if o))

    def _shared(self, name: str) -> bool:
        return sum(1 for other in self.names.values() if other == name) > 1


def organisation_names(org_ids: Iterable[str | None]) -> OrganisationNames:
    """The names of these organisations, in one query of the request's session."""
    return OrganisationNames(registry.organisation_names(db_session(), org_ids))
