"""cmhl_servicekit: cross-cutting service defaults. No business rules live here."""
