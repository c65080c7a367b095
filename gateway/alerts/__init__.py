"""Misuse alerts: patterns in the audit log the privacy officer wants to hear of.

The rules and their thresholds are in the policy (`alerts:`); `AlertService.evaluate`
runs them over recent audit entries (a background job, and on demand from the
`/alerts` page), stores each alert once and records it as an `alert.raised` entry.
`/metrics` counts them by rule (`ketenpoort_alerts_raised_total`).
"""

from __future__ import annotations
