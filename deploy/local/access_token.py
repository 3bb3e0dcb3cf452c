"""Prints an access token of a demo user of the local stack, for curl and scripts.

    uv run python deploy/local/access_token.py dmh-analyst        # or liaison-01, supervisor-01, ...
    curl -H "Authorization: Bearer $(uv run python deploy/local/access_token.py liaison-01)" ...

The user signs in at the stack's Keycloak with the password grant of the local test client
(refused by the services anywhere but the local stack). The token lives five minutes."""

import argparse
import json
import sys
from pathlib import Path

from cmhl_servicekit.oidc import SignInRefused, demo_user

STATE = Path(__file__).resolve().parent / "state"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("username", help="a demo user (`users` in the credentials file)")
    parser.add_argument("--state-dir", type=Path, default=STATE)
    args = parser.parse_args()
    path = args.state_dir / "credentials.json"
    if not path.exists():
        raise SystemExit(f"no {path}: start the stack with `make up` first")
    creds = json.loads(path.read_text())
    known = {user["username"] for user in creds["users"]}
    if args.username not in known:
        raise SystemExit(f"{args.username!r} is not a demo user; try one of {sorted(known)[:5]}")
    try:
        sys.stdout.write(demo_user(creds, args.username).token() + "\n")
    except SignInRefused as exc:
        raise SystemExit(f"{exc}. Is the stack running (`make up`)?") from None


if __name__ == "__main__":
    main()
