"""The MongoDB client factory: one `AsyncMongoClient` per event loop, created in the lifespan."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def make_mongo_client(uri: str, app_name: str) -> AsyncMongoClient[Document]:
    # tz_aware so datetimes read back are UTC-aware like the ones written.
    return AsyncMongoClient(
        uri, appname=app_name, tz_aware=True, serverSelectionTimeoutMS=5000, connect=False
    )


def database(client: AsyncMongoClient[Document], name: str) -> AsyncDatabase[Document]:
    return client[name]


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
