"""Fixtures of the training service's tests."""

import pytest

from cmhl_servicekit.auth import api_key_hash
from cmhl_servicekit.testing import infra_settings
from cmhl_training.config import TrainingSettings

AGENCY_KEY = "columbia-pd-test-key-0123456789"


@pytest.fixture
def training_settings(kafka_bootstrap: str, mongo_uri: str) -> TrainingSettings:
    return TrainingSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
        agency_api_keys={api_key_hash(AGENCY_KEY): "columbia-pd"},
    )
