"""The channels through the running service: webhooks in, fake providers receive.

Each test builds the app with the loopback fakes and the small test flows
(echo, notify), sends real signed webhooks, and asserts on what the fake
provider received and what the timeline recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from server import create_app
from tests.support.app import (
    PUBLIC_URL,
    WA_SECRET,
    WA_VERIFY,
    Fakes,
    Service,
    customer_event,
    make_settings,
    with_test_flows,
)
from tests.support.signing import (
    signed_whatsapp,
    telegram_callback_update,
    telegram_message_update,
    twilio_inbound_form,
    twilio_status_form,
    whatsapp_button_webhook,
    whatsapp_list_webhook,
    whatsapp_message_webhook,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
)

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")


async def start(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, **overrides: Any
) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows(**overrides))
    return Service(await aiohttp_client(create_app(settings)))


def texts(fakes: Fakes) -> list[str]:
    return [
        body["text"]["body"]
        for body in fakes.whatsapp.sent.get(DIGITS, [])
        if body.get("type") == "text"
    ]


async def test_whatsapp_handshake(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    query = {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1158201444"}
    good = await service.client.get("/webhooks/whatsapp", params=query)
    assert good.status == 200
    assert await good.text() == "1158201444"
    bad = await service.client.get(
        "/webhooks/whatsapp", params={**query, "hub.verify_token": "nope"}
    )
    assert bad.status == 403
    # Found by the full fuzz run: a repeated parameter was read by its first copy.
    for repeated in ("hub.verify_token", "hub.challenge", "hub.mode"):
        twice = [*query.items(), (repeated, "nope")]
        ambiguous = await service.client.get("/webhooks/whatsapp", params=twice)
        assert ambiguous.status == 403, repeated


@pytest.mark.parametrize(
    "path", ["/webhooks/whatsapp", "/webhooks/sms", "/webhooks/sms/status", "/webhooks/telegram"]
)
async def test_wrong_signatures_are_refused_and_nothing_is_stored(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, path: str
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    headers = {
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "X-Twilio-Signature": "bm9wZQ==",
        "X-Telegram-Bot-Api-Secret-Token": "wrong",
        "Content-Type": "application/json",
    }
    response = await service.client.post(path, data=b'{"object": "x"}', headers=headers)
    assert response.status == 401
    assert "error" in await response.json()
    assert await db.inbox.count_documents({}) == 0


async def test_channel_off_answers_503(aiohttp_client: Any, mongo_uri: str, db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    response = await client.post("/webhooks/telegram", data=b"{}")
    assert response.status == 503


async def test_whatsapp_text_is_answered_on_whatsapp_and_a_retry_is_processed_once(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    webhook = whatsapp_text_webhook("hola", phone=PHONE)
    await service.whatsapp(webhook)
    await service.whatsapp(webhook)  # Meta retries the same wamid
    await service.advance(0)
    assert texts(fakes) == ["eco: hola"]
    inbox = db.inbox
    assert await inbox.count_documents({"kind": "message"}) == 1


async def test_every_whatsapp_inbound_kind(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_button_webhook("yes", "Sí", phone=PHONE))
    await service.advance(0)
    await service.whatsapp(whatsapp_list_webhook("price", "Precio", phone=PHONE))
    await service.advance(0)
    await service.whatsapp(
        whatsapp_message_webhook(
            {
                "type": "image",
                "image": {
                    "id": "1234",
                    "mime_type": "image/jpeg",
                    "sha256": "x",
                    "caption": "mi foto",
                },
            },
            phone=PHONE,
        )
    )
    await service.advance(0)
    await service.whatsapp(
        whatsapp_message_webhook(
            {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}, phone=PHONE
        )
    )
    await service.advance(0)
    assert texts(fakes) == ["eco: Sí [yes]", "eco: Precio [price]", "eco: mi foto"]
    conversations = await service.api("GET", "/api/conversations")
    conversation = conversations["conversations"][0]
    timeline = await service.api("GET", f"/api/conversations/{conversation['id']}")
    inbound = [m for m in timeline["messages"] if m["direction"] == "in"]
    assert len(inbound) == 4  # the reaction is recorded, not answered


async def test_a_username_user_without_phone_is_answered_by_user_id(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=None, user_id="AR.1234567890"))
    await service.advance(0)
    assert fakes.whatsapp.sent["AR.1234567890"][0]["text"]["body"] == "eco: hola"


async def test_whatsapp_statuses_move_a_message_to_read(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))
    await service.advance(0)
    messages = db.messages
    sent = await messages.find_one({"direction": "out"})
    assert sent is not None and sent["status"] == "sent"
    for status in ("delivered", "read", "read"):  # the second "read" is a retry: stored once
        await service.whatsapp(whatsapp_status_webhook(sent["provider_id"], status, phone=PHONE))
        await service.advance(0)
    updated = await messages.find_one({"_id": sent["_id"]})
    assert updated is not None
    assert updated["status"] == "read"
    assert [h["status"] for h in updated["status_history"]] == ["queued", "sent", "delivered",
                                                                "read"]
    view = await service.api("GET", f"/api/conversations/{updated['conversation_id']}")
    assert view["messages"][-1]["status"] == "read"


async def test_a_late_status_never_moves_a_message_back(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))
    await service.advance(0)
    sent = await db.messages.find_one({"direction": "out"})
    assert sent is not None
    for status in ("read", "delivered"):  # Meta does not promise order
        await service.whatsapp(whatsapp_status_webhook(sent["provider_id"], status, phone=PHONE))
        await service.advance(0)
    updated = await db.messages.find_one({"_id": sent["_id"]})
    assert updated is not None and updated["status"] == "read"


async def test_sms_in_and_out_with_status_callbacks(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.sms(
        twilio_inbound_form("precio?", from_=PHONE, account_sid=fakes.twilio.account_sid)
    )
    await service.advance(0)
    request = fakes.twilio.requests[-1]
    assert request.form is not None and request.authorized
    assert request.form["Body"] == "eco: precio?"
    assert request.form["To"] == PHONE
    assert request.form["StatusCallback"] == PUBLIC_URL + "/webhooks/sms/status"
    sid = next(iter(fakes.twilio.messages))
    for status in ("sent", "delivered"):
        await service.sms(
            twilio_status_form(sid, status, to=PHONE, account_sid=fakes.twilio.account_sid),
            path="/webhooks/sms/status",
        )
    await service.advance(0)
    stored = await db.messages.find_one({"provider_id": sid})
    assert stored is not None and stored["status"] == "delivered"


async def test_telegram_deep_link_links_a_chat_to_the_store_customer(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z"))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    token = customer["telegram_link"].rsplit("start=", 1)[1]
    await service.telegram(telegram_message_update(f"/start {token}", chat_id=777))
    await service.advance(0)
    answered = await service.telegram(telegram_message_update("hola bot", chat_id=777))
    assert answered == {"ok": True}
    await service.advance(0)
    # The tap is answered in the webhook's reply (Telegram runs that Bot API
    # call), so the button's spinner stops without a request of our own.
    answered = await service.telegram(telegram_callback_update(
        "yes", chat_id=777, callback_id="4382bfdwdsb323b2d9"))
    assert answered == {"method": "answerCallbackQuery",
                        "callback_query_id": "4382bfdwdsb323b2d9"}
    await service.advance(0)
    assert [m["text"] for m in fakes.telegram.sent["777"]] == ["eco: hola bot", "eco: yes [yes]"]
    linked = await db.customers.find_one({"keys": "store:cus_1"})
    assert linked is not None and "tg:777" in linked["keys"]
    forged = telegram_message_update(f"/start {token[:-1]}x", chat_id=778)
    await service.telegram(forged)
    await service.advance(0)
    stranger = await db.customers.find_one({"keys": "tg:778"})
    assert stranger is not None and "store:cus_1" not in stranger["keys"]


STOP_WORDS = ["STOP", "BAJA", "Cancelar", "parar", "SAIR", "unsubscribe"]
START_WORDS = ["START", "alta", "Voltar"]
HELP_WORDS = ["HELP", "ayuda", "AJUDA"]


@pytest.mark.parametrize("word", STOP_WORDS)
async def test_sms_stop_keywords_opt_out_at_once_with_one_confirmation(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, word: str
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(
        customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z", consents={"sms": True})
    )
    for n in range(2):  # a repeated STOP confirms once
        await service.sms(
            twilio_inbound_form(
                word, from_=PHONE, message_sid=f"SM{n:032d}", account_sid=fakes.twilio.account_sid
            )
        )
        await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["sms"]["state"] == "revoked"
    assert customer["consents"]["sms"]["source"] == "keyword:sms"
    bodies = [r.form["Body"] for r in fakes.twilio.requests if r.form]
    assert len(bodies) == 1 and ("ALTA" in bodies[0] or "START" in bodies[0])


@pytest.mark.parametrize("word", START_WORDS)
async def test_start_keywords_opt_back_in(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, word: str
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(
        customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z", consents={"sms": False})
    )
    await service.sms(twilio_inbound_form(word, from_=PHONE, account_sid=fakes.twilio.account_sid))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["sms"]["state"] == "granted"
    assert [e["state"] for e in customer["consent_ledger"]] == ["revoked", "granted"]


@pytest.mark.parametrize(
    ("word", "expected"), [("HELP", "STOP"), ("ayuda", "BAJA"), ("AJUDA", "SAIR")]
)
async def test_help_keywords_answer_with_help_text(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, word: str, expected: str
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    locale = {"HELP": "en", "ayuda": "es", "AJUDA": "pt"}[word]
    await service.event(
        customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z", locale=locale)
    )
    await service.sms(twilio_inbound_form(word, from_=PHONE, account_sid=fakes.twilio.account_sid))
    await service.advance(0)
    body = fakes.twilio.requests[-1].form
    assert body is not None and expected in body["Body"]


async def test_whatsapp_stop_without_a_confirmation_flow_opts_out_directly(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(customer_event("evt_1", "customer.created", "2026-11-24T10:00:00Z"))
    await service.whatsapp(whatsapp_text_webhook("Baja", phone=PHONE))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["whatsapp"]["state"] == "revoked"
    assert len(texts(fakes)) == 1


async def test_outside_the_window_a_step_uses_its_template_or_is_skipped_with_a_reason(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.event(
        customer_event("evt_1", "order.fulfilled", "2026-11-24T10:00:00Z", order_id="o-1")
    )
    await service.advance(0)
    sent = fakes.whatsapp.sent[DIGITS]
    assert [b["type"] for b in sent] == ["template"]
    assert sent[0]["template"]["name"] == "order_shipped"
    await service.event(
        customer_event("evt_2", "product.back_in_stock", "2026-11-24T10:00:00Z", product_id="p-1")
    )
    await service.advance(0)
    assert len(fakes.whatsapp.sent[DIGITS]) == 1  # nothing sent: no template for that step
    skipped = await db.messages.find_one({"step": "restock"})
    assert skipped is not None and skipped["status"] == "skipped"
    assert "24-hour window" in skipped["error"]
    run = await db.flow_runs.find_one({"run": "notify:2"})
    assert run is not None
    assert any(
        h.get("reason", "").startswith("outside the WhatsApp 24-hour window")
        for h in run["history"]
    )


async def test_a_429_slows_the_sender_down_until_retry_after(
    aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.fail_next(status=429, code=130429, retry_after=30)
    await service.whatsapp(whatsapp_text_webhook("uno", phone=PHONE))
    await service.advance(0)
    assert texts(fakes) == []
    await service.advance(20)
    assert texts(fakes) == []  # still paused
    await service.advance(15)
    assert texts(fakes) == ["eco: uno"]
    assert len(fakes.whatsapp.requests) == 2


async def test_a_500_is_retried_and_delivered_once(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.fail_next(status=500, code=1, times=2)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))
    await service.advance(0)
    assert texts(fakes) == []
    await service.advance(3600)  # backoff 5 s, then 10 s, on the virtual clock
    assert texts(fakes) == ["eco: hola"]
    assert len(fakes.whatsapp.requests) == 3
    stored = await db.messages.find_one({"direction": "out"})
    assert stored is not None and stored["status"] == "sent" and stored["attempts"] == 3


async def test_a_permanent_400_is_recorded_on_the_message_and_the_run_and_not_retried(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))  # opens the window
    await service.advance(0)
    fakes.whatsapp.fail_next(status=400, code=131026)
    await service.event(
        customer_event("evt_1", "order.fulfilled", "2026-11-24T10:00:00Z", order_id="o-7")
    )
    await service.advance(0)
    await service.advance(86400)
    failed = await db.messages.find_one({"step": "shipped"})
    assert failed is not None and failed["status"] == "failed"
    assert failed["error"].startswith("131026")
    assert len(fakes.whatsapp.requests) == 2  # the echo, and the one failed attempt
    run = await db.flow_runs.find_one({"run": "notify:1"})
    assert run is not None  # the run had ended; the failure is on the message


async def test_a_webhook_with_nothing_we_handle_is_ignored_and_kept(
    db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes
) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    unsupported = whatsapp_message_webhook(
        {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
        phone=PHONE)
    body, headers = signed_whatsapp(WA_SECRET, unsupported)
    response = await service.client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 200
    assert await response.json() == {"ignored": True}
    kept = await db.inbox.find_one({"state": "ignored"})
    assert kept is not None and "unsupported" in kept["raw"]
    await service.advance(0)
    assert texts(fakes) == []
