"""Liaisons are told of new referrals and follow-ups coming due: in the app and by email."""
