"""Prints where the running local system answers, and how to ask it."""

import json
from pathlib import Path

STATE = Path(__file__).resolve().parent / "state"


def main() -> None:
    stack = json.loads((STATE / "stack.json").read_text())
    ports = stack["service_ports"]
    credentials = STATE / "credentials.json"
    print(f"""
CMHL is running.
  workspace  http://127.0.0.1:{ports["workspace"]}/         (liaisons and supervisors: sign in as liaison-01
             or supervisor-01, password `keys.demo_password` in the file below)
  referral   http://127.0.0.1:{ports["referral"]}/docs    (liaisons' API)
  followup   http://127.0.0.1:{ports["followup"]}/docs
  training   http://127.0.0.1:{ports["training"]}/docs
  reporting  http://127.0.0.1:{ports["reporting"]}/docs    (statewide metrics)
  placement  http://127.0.0.1:{ports["placement"]}/docs    (beds for 96-hour detentions)
  notices    http://127.0.0.1:{ports["notifications"]}/docs    (notifications; mail lands in {STATE / "mail"})
  dashboard  http://127.0.0.1:{ports["reporting"]}/        (the brochure's picture, public, suppressed)
  Kafka      127.0.0.1:{stack["kafka_port"]}      MongoDB wire (FerretDB) 127.0.0.1:{stack["mongo_port"]}
  Prometheus http://127.0.0.1:{stack.get("prometheus_port", 9090)}/alerts  (every service's /metrics, the alert rules)
  logs       {STATE / "logs"}
Sign-in     Keycloak, realm cmhl: http://127.0.0.1:{stack["keycloak_port"]}/admin/cmhl/console/
            (admin console: user admin, `keys.keycloak_admin_password` in the file below)
Demo users (31 liaisons, a supervisor, an analyst, a privacy officer, a program admin), their
password, the agency and facility clients: {credentials}
Statewide metrics, as the DMH analyst (the publication grid: fiscal quarters that have ended):
  curl -s -H "Authorization: Bearer $(uv run python deploy/local/access_token.py dmh-analyst)" \\
    "http://127.0.0.1:{ports["reporting"]}/api/v1/metrics/statewide?period=all"
  By dimension (county, cmhc, source, need, course...), as CSV, for a fiscal year:
    ".../api/v1/metrics/county?period=fy2026&format=csv"
Stop everything with `make down`.""")


if __name__ == "__main__":
    main()
