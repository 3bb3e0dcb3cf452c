"""The printable certificate of completion: one officer, one completed session, plain HTML.

HTML rather than PDF: every browser prints it, nothing to install, and its text is testable.
It names exactly one officer, by agency and agency-issued id; the name line is left blank for
the agency to fill in, so no name ever passes through this service."""

from html import escape

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_training.application.service import Certificate

_STYLE = """
body { font-family: Georgia, serif; margin: 0; background: #f4f1ea; }
.page { width: 9.5in; min-height: 6.8in; margin: 0.4in auto; padding: 0.6in 0.8in;
        background: #fff; border: 6px double #2d4a6b; box-sizing: border-box; text-align: center; }
h1 { font-size: 30pt; letter-spacing: 0.04em; color: #2d4a6b; margin: 0 0 0.2in; }
.course { font-size: 18pt; font-weight: bold; margin: 0.15in 0; }
.blank { display: inline-block; min-width: 4in; border-bottom: 1px solid #000; }
dl { display: grid; grid-template-columns: auto auto; gap: 4px 16px; width: max-content;
     margin: 0.3in auto 0; text-align: left; font-size: 11pt; }
dt { font-weight: bold; }
footer { margin-top: 0.35in; font-size: 9pt; color: #555; }
@media print { body { background: #fff; } .page { margin: 0; border-width: 4px; }
               @page { size: letter landscape; margin: 0.3in; } }
"""


def place_name(county_fips: str) -> str:
    """'Boone County', but the independent city is 'St. Louis City', not a county."""
    name = MISSOURI_COUNTIES.get(county_fips, county_fips)
    return name if name.endswith("City") else f"{name} County"


def render_certificate(certificate: Certificate) -> str:
    session = certificate.session
    officer = certificate.officer
    county = place_name(session.county_fips)
    held_on = session.held_on
    rows = [
        ("Officer", f"{officer.agency_id} / {officer.officer_ref}"),
        ("Course", f"{session.course_title} ({session.course_id})"),
        ("POST category", session.category.value.replace("_", " ")),
        ("Credit hours", f"{session.credit_hours:g}"),
        ("Date held", held_on.isoformat()),
        ("Place", f"{county}, Missouri (FIPS {session.county_fips})"),
        ("Host agency", session.host_agency_id),
        ("Trainer (liaison)", session.trainer_liaison_id),
        ("Session", f"{session.session_id} (record revision {session.revision})"),
    ]
    details = "\n".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Certificate of completion: {escape(session.course_title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<main class="page">
<h1>Certificate of Completion</h1>
<p>This certifies that the officer</p>
<p><span class="blank">&nbsp;</span><br><small>name, written in by the agency</small></p>
<p>of agency <strong>{escape(officer.agency_id)}</strong>, officer id
<strong>{escape(officer.officer_ref)}</strong>, completed</p>
<p class="course">{escape(session.course_title)}</p>
<p>on {escape(held_on.strftime("%B %-d, %Y"))} in {escape(county)}, Missouri,
for {escape(f"{session.credit_hours:g}")} hours of POST continuing education
({escape(session.category.value.replace("_", " "))}).</p>
<dl>
{details}
</dl>
<footer>Community Mental Health Liaison program · Missouri POST-approved course ·
certificate of completion {escape(certificate.officer_id[:12])}</footer>
</main>
</body>
</html>
"""
