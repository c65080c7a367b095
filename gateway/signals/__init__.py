"""Signals: what partners report, stored as pseudonyms and an envelope we cannot read."""
