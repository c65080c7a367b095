"""Matching: clusters of signals about one person, and who is told about them."""
