"""The workspace: the liaisons' and supervisors' pages over the services' APIs (a BFF)."""
