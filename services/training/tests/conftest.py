"""Fixtures of the training service's tests."""

import pytest

from cmhl_servicekit.testing import infra_settings
from cmhl_training.config import TrainingSettings


@pytest.fixture
def training_settings(kafka_bootstrap: str, mongo_uri: str) -> TrainingSettings:
    return TrainingSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
    )
