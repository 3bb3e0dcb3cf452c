"""The local stack keeps its data to its owner: no other local user lists the state folder or
reads Kafka's records (the intake topic names people) or the kept mail."""

import stat

import pytest

from cmhl_servicekit.testing import MailSink

pytestmark = pytest.mark.integration


def test_the_state_folder_kafka_data_and_mail_are_closed_to_other_users(
    mail_sink: MailSink,
) -> None:
    state_dir = mail_sink.folder.parent
    assert stat.S_IMODE(state_dir.stat().st_mode) & 0o066 == 0, "others cannot list it"
    for private in ("kafka", "mail"):
        assert stat.S_IMODE((state_dir / private).stat().st_mode) == 0o700, private
    assert stat.S_IMODE((state_dir / "test.env").stat().st_mode) == 0o600
