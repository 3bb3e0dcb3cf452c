"""The referral service: liaisons' API and agency intake of referrals."""
