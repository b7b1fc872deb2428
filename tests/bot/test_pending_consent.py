"""The ``pending`` consent state (double opt-in), with no database.

Pending is an opt-in the store reported and the customer has not confirmed:
it allows no marketing, it never beats a later revocation, and a store's
grant becomes pending on the channels ``DOUBLE_OPT_IN`` names. The flow that
asks for the confirmation is tested in ``tests/rules/test_double_opt_in.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.core.customers import facts, has_consent, record_consent, store_consent_state
from bot.core.errors import BadPayload
from bot.core.inputs import CustomerInfo
from bot.core.policy import may_send
from bot.infra.settings import Settings, format_settings_error
from bot.testing import PureHarness
from bot.types import Doc
from store_events.generic import GenericAdapter
from tests.support.policy_cases import NOON, POLICY, customer, message
from tests.support.store_signing import events_headers

T0 = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
PHONE = "+5491122334455"
SECRET = "evt-secret-0123456789"


def doc_with(channel: str, state: str, source: str = "test") -> Doc:
    doc: Doc = {"consent_ledger": [], "consents": {}}
    record_consent(doc, channel, state, source, T0, T0)
    return doc


# ---------------------------------------------------------------- the state itself


def test_pending_allows_no_marketing_and_rules_see_it() -> None:
    doc = doc_with("whatsapp", "pending", "generic:customer.created")
    assert has_consent(doc, "whatsapp") is False
    assert facts({"_id": "c1", **doc})["consents"] == {"whatsapp": "pending"}
    record_consent(doc, "whatsapp", "granted", "double_opt_in:whatsapp", T0 + timedelta(days=1),
                   T0 + timedelta(days=1))
    assert has_consent(doc, "whatsapp") is True


def test_a_marketing_message_on_a_pending_channel_is_skipped_for_consent() -> None:
    pending = {"state": "pending", "source": "generic:customer.created",
               "at": NOON - timedelta(days=1)}
    who = customer(consents={"whatsapp": pending})
    for stage in ("decision", "send"):
        verdict = may_send(message(channel="whatsapp"), who, NOON, POLICY, stage=stage)
        assert verdict.skipped and verdict.code == "consent", verdict
    # The confirmation itself is transactional: consent is not asked of it.
    assert not may_send(message(channel="whatsapp", marketing=False), who, NOON, POLICY,
                        stage="decision").skipped


# ------------------------------------------------------- what a store's value records


@pytest.mark.parametrize(("current", "stated", "double_opt_in", "timed", "expected"), [
    (None, True, (), False, "granted"),  # double opt-in off: as before
    (None, True, ("whatsapp",), False, "pending"),
    (None, True, ("sms",), False, "granted"),  # only the channels named
    (None, "pending", (), False, "pending"),  # the store asks for a confirmation itself
    (None, False, ("whatsapp",), False, "revoked"),
    ("granted", True, ("whatsapp",), False, "granted"),  # already confirmed: not asked again
    ("granted", "pending", (), False, None),
    ("pending", True, ("whatsapp",), False, "pending"),
    ("revoked", True, ("whatsapp",), False, "pending"),  # a STOP, then a new opt-in: ask
    (("revoked", "double_opt_in:whatsapp"), True, ("whatsapp",), False, None),  # said no
    (("revoked", "double_opt_in:expired"), True, ("whatsapp",), False, None),
    (("revoked", "double_opt_in:whatsapp"), True, ("whatsapp",), True, "pending"),
    (("revoked", "double_opt_in:whatsapp"), False, ("whatsapp",), False, "revoked"),
])
def test_what_a_store_statement_records(current: str | tuple[str, str] | None,
                                        stated: bool | str, double_opt_in: tuple[str, ...],
                                        timed: bool, expected: str | None) -> None:
    doc: Doc = {"consent_ledger": [], "consents": {}}
    if current is not None:
        state, source = current if isinstance(current, tuple) else (current, "test")
        record_consent(doc, "whatsapp", state, source, T0, T0)
    assert store_consent_state(doc, "whatsapp", stated, double_opt_in, timed=timed) == expected


def test_a_store_may_send_pending_and_nothing_looser() -> None:
    info = CustomerInfo(id="cus_1", consents={"whatsapp": "pending", "sms": True})
    assert info.consents == {"whatsapp": "pending", "sms": True}
    with pytest.raises(ValidationError, match='valid boolean or "pending"'):
        CustomerInfo(id="cus_1", consents={"whatsapp": "maybe"})


def generic_event(consents: dict[str, object]) -> bytes:
    return json.dumps({
        "id": "evt_1", "type": "customer.created", "occurred_at": "2026-01-15T15:00:00Z",
        "customer": {"id": "cus_1", "phone": PHONE, "consents": consents}, "data": {},
    }).encode()


def test_the_generic_adapter_takes_pending_and_names_a_bad_value() -> None:
    adapter = GenericAdapter(SECRET, "AR")
    body = generic_event({"whatsapp": "pending", "sms": False})
    events = adapter.parse(events_headers(SECRET, body), body)
    assert events is not None
    assert events[0].customer.consents == {"whatsapp": "pending", "sms": False}
    body = generic_event({"whatsapp": "yes"})
    with pytest.raises(BadPayload) as caught:
        adapter.parse(events_headers(SECRET, body), body)
    assert str(caught.value) == 'customer.consents.whatsapp: Input should be a valid boolean ' \
                                'or "pending"'


# ------------------------------------------------------------------------ settings


def test_double_opt_in_setting_is_a_list_of_channels_off_by_default() -> None:
    assert Settings().double_opt_in_channels == []
    settings = Settings(double_opt_in=" WhatsApp, sms ,whatsapp")
    assert settings.double_opt_in_channels == ["whatsapp", "sms"]
    assert settings.flow_settings()["double_opt_in"] == ["whatsapp", "sms"]
    with pytest.raises(ValidationError) as caught:
        Settings(double_opt_in="whatsapp;sms")
    assert "DOUBLE_OPT_IN='whatsapp;sms'" in format_settings_error(caught.value)
    with pytest.raises(ValidationError) as caught:
        Settings(double_opt_in_reminder_days=7, double_opt_in_last_reminder_days=2)
    assert "DOUBLE_OPT_IN_LAST_REMINDER_DAYS" in format_settings_error(caught.value)


# ------------------------------------------------ the router, with no flow loaded


def state_after_signup(consents: dict[str, bool | str], **settings: Any) -> dict[str, str]:
    h = PureHarness([], channels=("whatsapp", "sms"), **settings)
    h.customer("cus_1", phone=PHONE, consents=consents)  # type: ignore[arg-type]
    assert h.to("cus_1") == []  # no flow: nothing is asked
    return {ch: entry["state"] for ch, entry in h.customer_doc("cus_1")["consents"].items()}


def test_a_store_grant_is_pending_only_where_double_opt_in_is_on() -> None:
    assert state_after_signup({"whatsapp": True, "sms": True}) == {
        "whatsapp": "granted", "sms": "granted"}
    assert state_after_signup({"whatsapp": True, "sms": True}, double_opt_in="whatsapp") == {
        "whatsapp": "pending", "sms": "granted"}
    assert state_after_signup({"whatsapp": "pending", "sms": False}) == {
        "whatsapp": "pending", "sms": "revoked"}


def test_the_pending_entry_keeps_the_store_evidence() -> None:
    h = PureHarness([], channels=("whatsapp",), double_opt_in="whatsapp")
    h.customer("cus_1", phone=PHONE, consents={"whatsapp": True})
    [entry] = h.customer_doc("cus_1")["consent_ledger"]
    assert (entry["id"], entry["state"], entry["source"]) == (
        "cl1", "pending", "test:customer.created")
    assert entry["evidence"]["event_id"].startswith("evt_")
    assert h.customer_doc("cus_1")["consents"]["whatsapp"]["entry"] == "cl1"
