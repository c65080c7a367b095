"""The figures as a printable PDF report (fpdf2, Debian's DejaVu fonts): the same tables
as the page, with the note on "< t" and "x"; the charts stay on the page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
#: (caption, column heads, rows of (head, cells))
ReportTable = tuple[str, Sequence[str], Sequence[tuple[str, Sequence[str]]]]


class FontMissing(RuntimeError):
    """DejaVu Sans is not installed (Debian: fonts-dejavu-core)."""


def _font_dir() -> Path:
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").exists() and (folder / "DejaVuSans-Bold.ttf").exists():
            return folder
    raise FontMissing("DejaVuSans.ttf not found; install fonts-dejavu-core")


def render_pdf(title: str, lines: Sequence[str], tables: Sequence[ReportTable]) -> bytes:
    folder = _font_dir()
    pdf = FPDF(orientation="portrait", format="A4")
    pdf.set_title(title)
    pdf.set_creator("Ketenpoort")
    pdf.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    for caption, columns, rows in tables:
        if not rows:
            continue
        pdf.ln(4)
        pdf.set_font("DejaVu", "B", 11)
        pdf.multi_cell(0, 6, caption, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 8)
        head = 2 * max(1, len(columns))
        widths = (head, *([1] * len(columns))) if len(columns) < 4 else None
        with pdf.table(
            col_widths=widths,
            text_align=("LEFT", *(["RIGHT"] * len(columns))),
            headings_style=FontFace(emphasis="BOLD"),
            line_height=5,
        ) as table:
            heading = table.row()
            heading.cell("")
            for column in columns:
                heading.cell(column)
            for row_head, cells in rows:
                body_row = table.row()
                body_row.cell(row_head)
                for value in cells:
                    body_row.cell(value)
    return bytes(pdf.output())
