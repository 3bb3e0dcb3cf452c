"""Placement rules: facilities and beds, ranking, the 96-hour clock. No I/O."""
