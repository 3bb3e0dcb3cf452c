"""`GET /reports/annual`: the brochure's page for a period on the publication grid, as HTML with
a print stylesheet (one letter page) or, with `format=pdf`, as a PDF. Public like the dashboard:
it shows only what the grid publishes, so it takes the grid's periods (`period=fyYYYY`,
`fyYYYY-qN`, `all`, or `as_of` a fiscal quarter's last day) and answers others with a 422."""

import functools
import html
from pathlib import Path
from string import Template
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fpdf import FPDF

from cmhl_reporting.domain.annual import AnnualReport, Share
from cmhl_reporting.domain.suppression import Published
from cmhl_reporting.domain.window import WindowError
from cmhl_reporting.entrypoints.http.routes import AsOf, Period, publication_grid, unprocessable

router = APIRouter(tags=["public"])

ReportFormat = Annotated[str | None, Query(alias="format", pattern="^(html|pdf)$")]
BLUE = (31, 92, 139)
AMBER = (160, 90, 0)


def _count(value: Published) -> str:
    return f"{value:,}" if isinstance(value, int) else "suppressed"


def _percent(share: Share) -> str:
    return "suppressed" if share.percent is None else f"{share.percent:g}%"


@router.get("/reports/annual", response_model=None)
async def annual(
    request: Request, period: Period = None, as_of: AsOf = None, fmt: ReportFormat = None
) -> Response:
    """The brochure's page: referrals, their sources and presenting needs, trainings and
    officers trained, follow-up outcomes and placements, for a fiscal year (or quarter, or
    cumulatively as of a quarter's end)."""
    try:
        report = await publication_grid(request).annual_report(period, as_of)
    except WindowError as exc:
        raise unprocessable(exc) from exc
    if fmt == "pdf":
        name = f"as-of-{as_of.isoformat()}" if as_of else period or "all"
        return Response(
            bytes(render_pdf(report)),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="cmhl-annual-{name}.pdf"'},
        )
    return HTMLResponse(render_html(report))


def _rows(shares: list[Share]) -> str:
    rows = []
    for share in shares:
        width = share.percent or 0
        hidden = ' class="supp"' if share.percent is None else ""
        rows.append(
            f"<tr><th scope=row>{html.escape(share.label)}</th>"
            f'<td><span class="track"><span class="fill" style="width:{width}%"></span></span></td>'
            f"<td{hidden}>{_percent(share)}</td><td{hidden}>{_count(share.count)}</td></tr>"
        )
    return "".join(rows) or '<tr><td colspan="4">none in this period</td></tr>'


def _big(value: Published, label: str) -> str:
    cls = "big" if isinstance(value, int) else "big supp"
    return f'<div class="figure"><div class="{cls}">{_count(value)}</div><div>{label}</div></div>'


def render_html(report: AnnualReport) -> str:
    hours = report.median_hours_to_placement
    return _page().substitute(
        title=html.escape(report.title),
        period=html.escape(report.period),
        referrals=_big(report.referrals, "referrals from law enforcement and courts"),
        trainings=_big(report.trainings, "trainings for officers"),
        officers=_big(
            report.officers_trained, f"officers trained ({report.seats_filled:,} seats filled)"
        ),
        sources=_rows(report.sources),
        needs=_rows(report.needs),
        completed=_count(report.follow_ups_completed),
        outcomes=_rows(report.outcomes),
        requests=_count(report.placement_requests),
        placed=_count(report.placed),
        not_placed=_count(report.not_placed),
        past_96=_count(report.completed_past_96_hours),
        median="not shown" if hours is None else f"{hours:g} hours",
        read_at=html.escape(report.figures_read_at),
    )


@functools.cache
def _page() -> Template:
    """annual.html: `$name` placeholders, filled with escaped text and the rows built here."""
    return Template((Path(__file__).parent / "annual.html").read_text(encoding="utf-8"))


def _latin(text: str) -> str:
    """The PDF's core font is Latin-1: anything else becomes a plain equivalent."""
    return text.replace("\u2019", "'").encode("latin-1", "replace").decode("latin-1")


def render_pdf(report: AnnualReport) -> bytearray:
    """One letter page, laid out like the HTML (fpdf2, core fonts: no font files to ship)."""
    pdf = FPDF(format="letter", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_fill_color(*BLUE)
    pdf.rect(0, 0, pdf.w, 30, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_xy(14, 7)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, _latin(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(14)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 7, _latin(report.period), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(29, 43, 54)
    pdf.set_y(38)
    column = (pdf.w - 28) / 3
    for value, label in (
        (report.referrals, "referrals from law enforcement and courts"),
        (report.trainings, "trainings for officers"),
        (report.officers_trained, f"officers trained ({report.seats_filled:,} seats filled)"),
    ):
        x = pdf.get_x()
        pdf.set_font("Helvetica", "B", 24)
        pdf.set_text_color(*(BLUE if isinstance(value, int) else AMBER))
        pdf.cell(column, 11, _count(value))
        pdf.set_xy(x, pdf.get_y() + 11)
        pdf.set_font("Helvetica", "", 9)
        pdf.set_text_color(85, 98, 109)
        pdf.cell(column, 5, label)
        pdf.set_xy(x + column, 38)
    pdf.set_text_color(29, 43, 54)
    top: float = 62
    half = (pdf.w - 28 - 8) / 2
    left = _pdf_table(pdf, 14, top, half, "Referral source", report.sources)
    right = _pdf_table(
        pdf, 14 + half + 8, top, half, "Primary presenting need at referral", report.needs
    )
    top = max(left, right) + 6
    completed = f"{_count(report.follow_ups_completed)} follow-ups completed"
    left = _pdf_table(pdf, 14, top, half, "Follow-up outcomes", report.outcomes, completed)
    hours = report.median_hours_to_placement
    rows = [
        ("Placement requests", _count(report.placement_requests)),
        ("Placed", _count(report.placed)),
        ("Not placed", _count(report.not_placed)),
        ("Completed after 96 hours", _count(report.completed_past_96_hours)),
        ("Median time to placement", "not shown" if hours is None else f"{hours:g} hours"),
    ]
    right = _pdf_pairs(pdf, 14 + half + 8, top, half, "Placements for 96-hour detentions", rows)
    pdf.set_xy(14, max(left, right) + 8)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(85, 98, 109)
    pdf.multi_cell(
        pdf.w - 28,
        4,
        _latin(
            f"Days are counted in Central time; figures as read at {report.figures_read_at}. "
            "Counts from 1 to 10 are shown as suppressed, and other numbers are hidden with them "
            "wherever adding or subtracting published figures would reveal them. Trainings and "
            "officers are not suppressed."
        ),
    )
    return pdf.output()


def _heading(pdf: FPDF, x: float, y: float, width: float, text: str) -> float:
    pdf.set_xy(x, y)
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_text_color(*BLUE)
    pdf.cell(width, 6, _latin(text.upper()))
    pdf.set_text_color(29, 43, 54)
    return y + 8


def _pdf_table(
    pdf: FPDF,
    x: float,
    y: float,
    width: float,
    title: str,
    shares: list[Share],
    note: str | None = None,
) -> float:
    y = _heading(pdf, x, y, width, title)
    pdf.set_font("Helvetica", "", 9)
    if note:
        pdf.set_xy(x, y)
        pdf.cell(width, 5, _latin(note))
        y += 6
    label_w, bar_w = width * 0.42, width * 0.28
    if not shares:
        pdf.set_xy(x, y)
        pdf.cell(width, 5, "none in this period")
        return y + 6
    for share in shares:
        pdf.set_xy(x, y)
        pdf.cell(label_w, 5, _latin(share.label))
        pdf.set_fill_color(232, 237, 241)
        pdf.rect(x + label_w, y + 1, bar_w, 3, style="F")
        if share.percent:
            pdf.set_fill_color(46, 134, 193)
            pdf.rect(x + label_w, y + 1, bar_w * share.percent / 100, 3, style="F")
        pdf.set_xy(x + label_w + bar_w + 2, y)
        if isinstance(share.count, str):
            # A hidden count has no share either: one word across both columns.
            pdf.set_text_color(*AMBER)
            pdf.cell(width * 0.30 - 2, 5, "suppressed", align="R")
        else:
            pdf.cell(
                width * 0.12, 5, _percent(share) if share.percent is not None else "", align="R"
            )
            pdf.cell(width * 0.18 - 2, 5, _count(share.count), align="R")
        pdf.set_text_color(29, 43, 54)
        y += 6
    return y


def _pdf_pairs(
    pdf: FPDF, x: float, y: float, width: float, title: str, rows: list[tuple[str, str]]
) -> float:
    y = _heading(pdf, x, y, width, title)
    pdf.set_font("Helvetica", "", 9)
    for label, value in rows:
        pdf.set_xy(x, y)
        pdf.cell(width * 0.7, 5, _latin(label))
        pdf.set_text_color(*(AMBER if value == "suppressed" else (29, 43, 54)))
        pdf.cell(width * 0.3, 5, value, align="R")
        pdf.set_text_color(29, 43, 54)
        y += 6
    return y
