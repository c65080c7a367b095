"""Published figures: counts per year or quarter, with small counts suppressed.

Computed from the metadata of signals, matches, cases and shares and from the audit log,
never from a payload. `FiguresService` (in `service.py`) asks the policy, computes,
protects the small cells (`suppression.py`) and writes the export's audit entry;
`GET /v1/figures` (`views.py`) and the `/figures` page call it.
"""
