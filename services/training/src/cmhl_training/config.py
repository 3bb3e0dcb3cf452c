"""Training service settings (env prefix CMHL_TRAINING_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class TrainingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_TRAINING_", extra="ignore", frozen=True)

    http_port: int = 8003
    mongo_database: str = "cmhl_training"
    pseudonym_key: SecretStr = Field(description="HMAC key that turns officer ids into pseudonyms")
