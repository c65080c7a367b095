"""`ketenpoort policy show`: the agreement as Markdown a privacy officer reads (Dutch headings)."""

from __future__ import annotations

from gateway.policy.loader import LoadedPolicy
from gateway.policy.schema import Category, Rule

ROLE_NAMES = {
    "coordinator": "coördinator",
    "privacy-officer": "privacyfunctionaris",
    "admin": "beheerder",
    "professional": "professional van een ketenpartner",
}


def _list(values: list[str] | None, empty: str = "—") -> str:
    return ", ".join(f"`{v}`" for v in values) if values else empty


def _who(rule: Rule) -> str:
    who = rule.who
    if who.type == "user":
        return "medewerkers met de rol " + " of ".join(ROLE_NAMES[r] for r in who.roles or [])
    kinds = _list(who.organisation_kinds, "elke soort")
    scopes = f" met scope {_list(who.scopes)}" if who.scopes else ""
    return f"systemen van ketenpartners ({kinds}){scopes}"


def _disclosure(c: Category) -> str:
    if c.disclosure is None:
        return "geen beperking"
    who = (
        "elk onderdeel wordt eerst beoordeeld"
        if c.disclosure.review
        else f"signalen van {_list(c.disclosure.review_submitters)} worden eerst beoordeeld"
    )
    return f"{who} ({c.disclosure.ground})"


def to_markdown(loaded: LoadedPolicy) -> str:
    p = loaded.policy
    out: list[str] = [f"# {p.title}", ""]
    if p.description:
        out += [p.description, ""]
    out += [
        f"- Kenmerk: `{p.id}`, versie `{p.version}`",
        f"- Vingerafdruk (SHA-256 van de canonieke JSON): `{loaded.digest}`",
        "",
        "## Verwerkingsverantwoordelijke",
        "",
        f"{p.controller.name}. Organisatie-id van het meldpunt: `{p.controller.organisation}`.",
        f"Register van verwerkingsactiviteiten (AVG art. 30): <{p.controller.register_uri}>.",
    ]
    if p.controller.contact:
        out.append(f"Contact: {p.controller.contact}.")
    out += ["", "## Deelnemende organisaties", "", "| soort | omschrijving |", "| --- | --- |"]
    out += [f"| `{k}` | {v.description} |" for k, v in p.organisation_kinds.items()]
    out += ["", "## Categorieën van signalen", ""]
    for name, c in p.categories.items():
        out += [
            f"### {name}",
            "",
            c.description,
            "",
            f"- **Doel:** {c.purpose}",
            "- **Grondslagen:**",
            *[f"  - {b.ref} — {b.note}" for b in c.legal_basis],
            f"- **Verwerkingsactiviteit:** <{c.processing_activity}>",
            f"- **Bewaartermijn:** {c.retention_days} dagen",
            f"- **Verplichte ontvangers:** {_list(c.required_recipients)}",
            f"- **Mogelijke ontvangers (soorten):** {_list(c.optional_recipient_kinds)}",
            f"- **Koppelsleutels:** {_list(list(c.linkage_keys))}",
            f"- **Mogen melden:** {_list(c.submitters)}",
            f"- **Verstrekking aan de betrokkene:** {_disclosure(c)}",
            *(
                [
                    "- **Aansluittest:** een signaal hier wordt gecontroleerd en gelogd en "
                    "meteen gewist; het wordt nooit gekoppeld, gedeeld of gemeld."
                ]
                if c.test
                else []
            ),
            "",
        ]
    out += [
        "## Wie hoort van een treffer",
        "",
        "De coördinator van het meldpunt hoort altijd van een treffer.",
        "",
        "| melder (soort) | hoort van treffer | hoort welke organisaties |",
        "| --- | --- | --- |",
    ]
    for kind in p.organisation_kinds:
        found = p.matching.submitters.get(kind)
        told = found is not None and found.told_hit
        reveals = told and found is not None and found.reveals_organisations
        out.append(f"| `{kind}` | {'ja' if told else 'nee'} | {'ja' if reveals else 'nee'} |")
    out += ["", "## Rollen en functiescheiding", ""]
    for role, r in p.roles.items():
        never = f" Nooit: {_list(list(r.never))}." if r.never else ""
        out.append(f"- **{ROLE_NAMES[role]}** (`{role}`): {r.description}{never}")
    out += [
        "",
        "## Doelbinding",
        "",
        f"Een doel is verplicht bij: {_list(list(p.purposes.required_for))}.",
        "",
        *[f"- `{k}`: {v}" for k, v in p.purposes.allowed.items()],
        "",
        "## Toegestane handelingen",
        "",
        "Wat hier niet staat, is verboden.",
        "",
    ]
    for rule in p.rules:
        conditions = []
        if rule.categories is not None:
            conditions.append(f"categorieën {_list(rule.categories)}")
        if rule.own_organisation:
            conditions.append("alleen gegevens van de eigen organisatie")
        if rule.own_submission:
            conditions.append("alleen signalen die de medewerker zelf meldde")
        if rule.category_submitter:
            conditions.append("alleen categorieën die deze soort organisatie mag melden")
        if rule.purposes is not None:
            conditions.append(f"doelen {_list(rule.purposes)}")
        if rule.obligations:
            conditions.append("informeren: " + _list([o.notify for o in rule.obligations]))
        extra = f" ({'; '.join(conditions)})" if conditions else ""
        out.append(
            f"- `{rule.id}`: {rule.description} — {_who(rule)}: {_list(list(rule.actions))}{extra}"
        )
    out += ["", "## Vier-ogenprincipe", ""]
    if not p.four_eyes:
        out.append("Geen handelingen vragen een tweede goedkeuring.")
    for four in p.four_eyes:
        cats = f" in {_list(four.categories)}" if four.categories is not None else ""
        roles = " of ".join(ROLE_NAMES[r] for r in four.approver_roles)
        out.append(
            f"- `{four.id}`: {four.description} ({_list(list(four.actions))}{cats}; "
            f"goedkeuring door een andere {roles})"
        )
    out += ["", "## Signaleringen", ""]
    if not p.alerts:
        out.append("Dit protocol kent geen signaleringen.")
    for alert in p.alerts:
        extra = ""
        if alert.factor is not None:
            extra += (
                f"; meer dan {alert.factor:g} keer het gebruikelijke"
                f" over {alert.baseline_days} dagen"
            )
        if alert.office_hours is not None:
            start, end = alert.office_hours
            extra += f"; kantoortijd {start}:00-{end}:00 op werkdagen ({alert.timezone})"
        out.append(
            f"- `{alert.id}` (`{alert.kind}`): {alert.description} — drempel {alert.threshold} "
            f"binnen {alert.window_minutes} minuten{extra}"
        )
    out += [
        "",
        "## Testgevallen",
        "",
        f"{len(p.tests)} testgevallen; draai ze met `ketenpoort policy test`.",
        "",
    ]
    out += [f"- {case.name}: **{case.expect.effect}** (`{case.expect.rule}`)" for case in p.tests]
    return "\n".join(out) + "\n"
