"""Referral business rules: lifecycle, repeat involvement, assignment. No framework, no I/O."""
