"""The local stack's SMTP sink: it takes every mail and keeps it as a file in a folder, where
people and tests read it. It never relays anything anywhere.

    python deploy/local/mailsink.py --port 1025 --folder deploy/local/state/mail

Each mail is written whole to `<time>-<random>.eml` (through a temporary name, so a reader never
sees half a file). aiosmtpd comes from PyPI with the project's development dependencies."""

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class KeepInFolder:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        content = envelope.original_content or b""
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self._folder / f".{name}.partial"
        partial.write_bytes(content)
        partial.rename(self._folder / name)
        return "250 OK: kept"


async def serve(host: str, port: int, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before serving)
    loop = asyncio.get_running_loop()
    handler = KeepInFolder(folder)
    server = await loop.create_server(lambda: SMTP(handler), host, port)
    print(f"[mailsink] SMTP on {host}:{port}, mail kept in {folder}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.folder))


if __name__ == "__main__":
    main()
