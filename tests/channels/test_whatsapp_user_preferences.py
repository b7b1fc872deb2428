"""WhatsApp's own opt-out: the ``user_preferences`` webhook becomes a :class:`ConsentChange`.

A user can stop (and resume) a business's marketing messages inside WhatsApp;
Meta then posts a ``user_preferences`` change. The channel turns a stop into
a revocation and a resume into a grant, ignores other preferences, and
refuses a malformed one naming the field. Through the service, the change
is stored in the inbox as a "consent" item for the runtime to decide.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.inputs import ConsentChange, InboundMessage
from channels.errors import BadPayload
from channels.whatsapp import WhatsAppChannel
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, with_test_flows
from tests.support.signing import (
    PHONE,
    USER_ID,
    json_body,
    whatsapp_text_webhook,
    whatsapp_user_preferences_webhook,
)

# Meta's documented example (webhooks reference, user_preferences), with the
# business-scoped user id every contact carries since 2026.
DOCUMENTED: dict[str, Any] = {
    "object": "whatsapp_business_account",
    "entry": [{
        "id": "102290129340398",
        "changes": [{
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881",
                             "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234",
                              "user_id": "US.13491208655302741918"}],
                "user_preferences": [{
                    "wa_id": "16505551234",
                    "detail": "User requested to stop marketing messages",
                    "category": "marketing_messages",
                    "value": "stop",
                    "timestamp": 1731705721,
                }],
            },
            "field": "user_preferences",
        }],
    }],
}


@pytest.fixture
def parser() -> WhatsAppChannel:
    """A channel for the pure methods (no request is ever made)."""
    return WhatsAppChannel(phone_id="123456789012345", token="t", app_secret="s",
                           verify_token="v")


def _one(parser: WhatsAppChannel, payload: dict[str, Any]) -> ConsentChange:
    [change] = parser.parse({}, json_body(payload))
    assert isinstance(change, ConsentChange)
    return change


def test_the_documented_stop_revokes(parser: WhatsAppChannel) -> None:
    change = _one(parser, DOCUMENTED)
    assert change == ConsentChange(
        channel="whatsapp", provider_id="prefs:16505551234:1731705721:stop",
        sender="+16505551234", user_id="US.13491208655302741918", state="revoked",
        detail="User requested to stop marketing messages",
        at=datetime.fromtimestamp(1731705721, tz=UTC))


def test_a_resume_grants(parser: WhatsAppChannel) -> None:
    change = _one(parser, whatsapp_user_preferences_webhook("resume", timestamp=1731800000))
    assert (change.state, change.sender, change.user_id) == ("granted", PHONE, USER_ID)
    assert change.provider_id == f"prefs:{PHONE.lstrip('+')}:1731800000:resume"
    assert change.detail == "User requested to resume marketing messages"


def test_a_username_user_is_known_by_user_id(parser: WhatsAppChannel) -> None:
    change = _one(parser, whatsapp_user_preferences_webhook("stop", phone=None, timestamp=17))
    assert (change.sender, change.user_id, change.state) == (USER_ID, USER_ID, "revoked")
    assert change.provider_id == f"prefs:{USER_ID}:17:stop"


def test_a_redelivery_has_the_same_id_and_a_later_change_a_new_one(
        parser: WhatsAppChannel) -> None:
    first = _one(parser, whatsapp_user_preferences_webhook("stop", timestamp=1000))
    again = _one(parser, whatsapp_user_preferences_webhook("stop", timestamp=1000))
    later = _one(parser, whatsapp_user_preferences_webhook("stop", timestamp=2000))
    assert first.provider_id == again.provider_id != later.provider_id


@pytest.mark.parametrize(("value", "category"), [
    ("signup", "marketing_messages"),  # a signup through a link: no change of consent
    ("UNKNOWN_VALUE", "marketing_messages"),
    ("stop", "offers_and_announcements"),  # a category newer than this code
])
def test_other_preferences_are_ignored(parser: WhatsAppChannel, value: str,
                                       category: str) -> None:
    payload = whatsapp_user_preferences_webhook("stop", timestamp=1000)
    other = whatsapp_user_preferences_webhook(value, category=category, timestamp=2000)
    items = payload["entry"][0]["changes"][0]["value"]["user_preferences"]
    items.insert(0, other["entry"][0]["changes"][0]["value"]["user_preferences"][0])
    [change] = parser.parse({}, json_body(payload))  # only the stop
    assert isinstance(change, ConsentChange)
    assert (change.state, change.at.timestamp()) == ("revoked", 1000)


def test_preferences_and_messages_in_one_webhook(parser: WhatsAppChannel) -> None:
    payload = whatsapp_user_preferences_webhook("stop")
    payload["entry"][0]["changes"] += whatsapp_text_webhook("hola")["entry"][0]["changes"]
    change, message = parser.parse({}, json_body(payload))
    assert isinstance(change, ConsentChange) and isinstance(message, InboundMessage)


def _broken(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    payload = copy.deepcopy(DOCUMENTED)
    change(payload["entry"][0]["changes"][0]["value"])
    return payload


def _item(value: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = value["user_preferences"][0]
    return item


@pytest.mark.parametrize(("payload", "problem"), [
    (_broken(lambda v: v.pop("user_preferences")), "'user_preferences' must be a list"),
    (_broken(lambda v: v.update(user_preferences=["stop"])),
     r"user_preferences\[0\] must be an object"),
    (_broken(lambda v: _item(v).pop("value")), "'value' must be a str"),
    (_broken(lambda v: _item(v).update(category=7)), "'category' must be a str"),
    (_broken(lambda v: _item(v).update(detail=["x"])), "'detail' must be a str"),
    (_broken(lambda v: _item(v).update(timestamp="yesterday")), "'timestamp'"),
    (_broken(lambda v: (_item(v).pop("wa_id"), v.pop("contacts"))), "no 'wa_id'"),
    (_broken(lambda v: v.pop("metadata")), "refused by pywa"),
])
def test_malformed_preferences_are_refused_naming_the_field(
        parser: WhatsAppChannel, payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadPayload, match=problem) as caught:
        parser.parse({}, json_body(payload))
    assert "user_preferences" in str(caught.value)


# -- through the service ------------------------------------------------------------


async def _service(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows())
    return Service(await aiohttp_client(create_app(settings)))


async def test_a_signed_stop_is_stored_as_a_consent_input(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await _service(aiohttp_client, mongo_uri, db_name, fakes)
    webhook = whatsapp_user_preferences_webhook("stop", timestamp=1731705721)
    await service.whatsapp(webhook)
    await service.whatsapp(webhook)  # Meta retries: stored once
    [item] = await db.inbox.find({"kind": "consent"}).to_list()
    assert item["source"] == "whatsapp"
    assert item["payload"]["state"] == "revoked"
    assert item["payload"]["sender"] == PHONE
    assert item["payload"]["detail"] == "User requested to stop marketing messages"
    assert f"phone:{PHONE}" in item["keys"]


async def test_a_stop_in_whatsapp_revokes_whatsapp_consent(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await _service(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z",
                                       phone=PHONE, consents={"whatsapp": True}))
    await service.advance(0)
    await service.whatsapp(whatsapp_user_preferences_webhook("stop"))
    await service.advance(0)
    customer = await db.customers.find_one({"phone": PHONE})
    assert customer["consents"]["whatsapp"]["state"] == "revoked"
    assert customer["consents"]["whatsapp"]["source"] == "whatsapp:user_preferences"
