"""Signals: submission, payload envelopes, notifications."""
