"""Mail over SMTP with the standard library, in a worker thread so the event loop never waits
on the network; server answers map to `MailRefused` (5xx: for good) or `MailUnavailable`."""

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from cmhl_notifications.application.ports import Mail, MailRefused, MailUnavailable

TIMEOUT_SECONDS = 20


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._login = (username, password) if username and password else None

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)

    def _send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = mail.message_id
        message["Date"] = formatdate(usegmt=True)
        message.set_content(mail.text)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=TIMEOUT_SECONDS) as server:
                if self._starttls:
                    server.starttls(context=ssl.create_default_context())
                if self._login:
                    server.login(*self._login)
                server.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise MailRefused(f"recipient refused ({codes})") from exc
            raise MailUnavailable(f"recipient deferred ({codes})") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise MailRefused(f"server refused the message ({exc.smtp_code})") from exc
            raise MailUnavailable(f"server deferred the message ({exc.smtp_code})") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailUnavailable(f"mail server unreachable: {type(exc).__name__}") from exc
