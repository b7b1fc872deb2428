"""``MONGODB_WRITE_CONCERN``: validated at start-up and carried by the journaled writes.

What the journaling buys (nothing acknowledged lost when every process is
killed at once) is tested on real processes in ``test_durability.py``.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.infra.database import open_database
from bot.infra.settings import Settings, format_settings_error


@pytest.mark.parametrize("value", ["0", "fast", "51", ""])
def test_a_bad_write_concern_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(mongodb_write_concern=value)
    message = format_settings_error(caught.value)
    assert f"MONGODB_WRITE_CONCERN={value!r}" in message
    assert "majority or a number" in message


@pytest.mark.parametrize(("value", "w"), [("majority", "majority"), ("2", 2)])
async def test_the_collections_write_journaled_with_the_configured_w(
        mongo_uri: str, db_name: str, value: str, w: str | int) -> None:
    settings = Settings(mongodb_uri=mongo_uri, mongodb_db=db_name, mongodb_write_concern=value)
    async with open_database(settings) as database:
        for collection in (database.inbox, database.customers, database.messages):
            assert collection.write_concern.document == {"w": w, "j": True}
        # Harmless to lose (Database.unjournaled): acknowledged, not synced.
        assert database.unjournaled("customers").write_concern.document == {"w": 1}
        await database.client.drop_database(db_name)


async def test_the_default_is_majority_and_journaled(mongo_uri: str, db_name: str) -> None:
    settings = Settings(mongodb_uri=mongo_uri, mongodb_db=db_name)
    async with open_database(settings) as database:
        await database.inbox.insert_one({"_id": "accepted"})  # the embedded server takes it
        assert database.inbox.write_concern.document == {"w": "majority", "j": True}
        await database.client.drop_database(db_name)
