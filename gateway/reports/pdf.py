"""The data-subject report as a PDF that can be handed out (fpdf2, Debian's DejaVu fonts).

The text comes in through `t` (the page's translation function), so the PDF is in the
officer's language; DejaVu covers é, ë and the other letters of Dutch names. Items for
review are printed with a marker in words, not only in colour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from gateway.reports.subject import ReportItem, SubjectReport

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
LOCAL = ZoneInfo("Europe/Amsterdam")
Translate = Callable[[str], str]


class FontMissing(RuntimeError):
    """DejaVu Sans is not installed (Debian: fonts-dejavu-core)."""


def _font_dir() -> Path:
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").exists() and (folder / "DejaVuSans-Bold.ttf").exists():
            return folder
    raise FontMissing("DejaVuSans.ttf not found; install fonts-dejavu-core")


def _when(moment: datetime) -> str:
    return moment.astimezone(LOCAL).strftime("%d-%m-%Y %H:%M")


class _Report(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=7)
        self.cell(0, 5, f"{self.footer_text} · {self.page_no()}/{{nb}}", align="C")


def render_pdf(
    report: SubjectReport,
    t: Translate,
    labels: Mapping[str, str],
) -> bytes:
    """`labels`: translated names of the sections (by kind), actions and purposes."""
    folder = _font_dir()
    pdf = _Report(orientation="landscape", format="A4")
    pdf.footer_text = t("Data-subject report") + f" · {_when(report.generated_at)}"
    pdf.set_title(t("Data-subject report"))
    pdf.set_author(report.controller)
    pdf.set_creator("Ketenpoort")
    pdf.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 8, t("Data-subject report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    facts = [
        (t("Controller"), report.controller),
        (t("Made on"), _when(report.generated_at)),
        (t("Made by"), report.officer),
        (t("Purpose"), labels.get(f"purpose:{report.purpose}", report.purpose)),
        (t("Policy"), f"{report.policy_id} {report.policy_version} ({report.policy_digest[:16]}…)"),
        (t("Items for review"), str(report.review_count)),
    ]
    for key, value in facts:
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(62, 5, key)
        pdf.set_font("DejaVu", size=9)
        pdf.multi_cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(
        0,
        5,
        t(
            "Items marked FOR REVIEW may fall under a restriction of the policy; the privacy "
            "officer decides on them before this report is handed out."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )

    def title(text: str) -> None:
        if pdf.get_y() > pdf.h - 45:  # no heading alone at the foot of a page
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 12)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=8)

    title(t("Signals held"))
    if not report.signals:
        pdf.multi_cell(
            0, 5, t("No signals are held about this person."), new_x="LMARGIN", new_y="NEXT"
        )
    else:
        _table(
            pdf,
            (22, 40, 22, 28, 18, 22, 60, 30),
            [
                t("Received"),
                t("Organisation"),
                t("Reference"),
                t("Category"),
                t("Status"),
                t("Kept until"),
                t("Legal bases"),
                t("Disclosure"),
            ],
            (
                [
                    _when(s.created_at),
                    report.organisations.get(s.organisation, s.organisation),
                    s.reference,
                    labels.get(f"category:{s.category}", s.category),
                    s.status,
                    _when(s.expires_at),
                    "; ".join(s.legal_bases),
                    t("FOR REVIEW") if s.review else t("may be disclosed"),
                ]
                for s in report.signals
            ),
        )
    for kind, items in report.sections:
        title(labels.get(f"kind:{kind}", kind))
        _table(
            pdf,
            (24, 28, 34, 30, 26, 38, 62, 24),
            [
                t("Date"),
                t("Action"),
                t("Who"),
                t("Organisation"),
                t("Category"),
                t("Purpose"),
                t("Legal bases"),
                t("Disclosure"),
            ],
            (_cells(item, t, labels) for item in items),
        )
    reviewed = [c for c in report.categories if c.disclosure]
    title(t("Legal bases per category"))
    for c in report.categories:
        pdf.set_font("DejaVu", "B", 9)
        name = labels.get(f"category:{c.name}", c.name)
        pdf.multi_cell(0, 5, f"{name}: {c.purpose}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=8)
        for ref, note in c.legal_bases:
            pdf.multi_cell(0, 4.5, f"• {ref} — {note}", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(
            0,
            4.5,
            t("Retention: %(days)s days") % {"days": c.retention_days},
            new_x="LMARGIN",
            new_y="NEXT",
        )
    if reviewed:
        title(t("Grounds for restriction"))
        for c in reviewed:
            name = labels.get(f"category:{c.name}", c.name)
            pdf.multi_cell(0, 4.5, f"{name}: {c.disclosure}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _table(
    pdf: FPDF, widths: tuple[int, ...], headings: list[str], rows: Iterable[list[str]]
) -> None:
    """One section's table: a grey bold heading row, then the rows, left-aligned."""
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
        line_height=4.5,
        text_align="LEFT",
    ) as table:
        table.row(headings)
        for row in rows:
            table.row(row)


def _cells(item: ReportItem, t: Translate, labels: Mapping[str, str]) -> list[str]:
    who = item.actor + (
        f" ({labels.get(f'role:{item.actor_role}', item.actor_role)})" if item.actor_role else ""
    )
    org = item.organisation or ""
    if item.recipients:
        org += ("\n→ " if org else "→ ") + ", ".join(item.recipients)
    purpose = ""
    if item.purpose:
        purpose = item.purpose_text or labels.get(f"purpose:{item.purpose}", item.purpose)
    action = labels.get(f"action:{item.action}", item.action)
    if item.outcome != "success":
        action += f" ({labels.get(f'outcome:{item.outcome}', item.outcome)})"
    return [
        _when(item.time),
        action,
        who,
        org,
        labels.get(f"category:{item.category}", item.category) if item.category else "",
        purpose,
        "; ".join(item.legal_bases),
        t("FOR REVIEW") if item.review else t("may be disclosed"),
    ]
