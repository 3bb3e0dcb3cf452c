"""Root conftest: the shared fixtures for real infrastructure."""

pytest_plugins = ["cmhl_servicekit.testing"]
