"""Follow-up rules: the schedule policy and when a follow-up is due or overdue. No I/O."""
