"""Reports the privacy officer hands out: the data-subject report (AVG art. 15).

`SubjectReportService` builds the report from the subject search (every signal and
audit entry naming the person) and the active policy (legal bases, purposes, what needs
review before disclosure); `pdf.render_pdf` prints it. Web pages call the service.
"""

from __future__ import annotations
