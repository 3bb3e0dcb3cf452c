"""Reporting rules: pure projections from events to facts, and small-cell suppression."""
