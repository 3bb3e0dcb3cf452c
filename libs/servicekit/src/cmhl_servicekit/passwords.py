"""Passwords of the principals and database users a deployment creates: generated once, read
from a JSON file or a mounted Secret. Kafka's principals (kafka_access) and the database users
(database_access) both come through here."""

import json
import secrets
from collections.abc import Mapping
from pathlib import Path


def new_passwords(names: list[str], known: Mapping[str, str]) -> dict[str, str]:
    """The passwords of `names`: the known ones kept, a new random one for each other."""
    return {n: known.get(n) or secrets.token_urlsafe(24) for n in names}


def read_passwords(path: Path, key: str | None = None) -> dict[str, str]:
    """A JSON object name -> password (or such an object under `key` of a larger JSON file, like
    the local stack's credentials.json), or a folder of files named by user: a mounted Secret."""
    if path.is_dir():
        return {
            f.name: f.read_text().strip()
            for f in sorted(path.iterdir())
            if f.is_file() and not f.name.startswith(".")
        }
    stored = json.loads(path.read_text())
    if key is not None and key in stored:
        stored = stored[key]
    return {str(name): str(password) for name, password in stored.items()}
