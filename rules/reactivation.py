"""Reactivation: win back customers who stopped buying, then hand them to the sunset.

A library flow: off until the store names it in ``FLOWS`` (``on_by_default=False``).

- **Trigger**: ``customer.inactive``, fired by the service
  ``INACTIVE_AFTER_DAYS`` (90) after the customer's last order
  (``bot/core/lifecycle.py``). Marketing (needs consent). A customer who
  never ordered is not reactivated (exit ``no_orders`` at once; the welcome
  series is theirs).
- **Steps**, at the months of ``REACTIVATION_MONTHS`` ("3,6,12"; a month is
  30 days) counted from the last order; the flow waits for the later ones
  itself (``after``), and a time already past when the run starts (say
  ``INACTIVE_AFTER_DAYS`` is 200) comes at once:
  1. ``checkin`` (at the trigger): "¿todo bien?", no offer.
  2. ``incentive`` (6 months): a single-use code (``issue_code``).
  3. ``last_offer`` (12 months): the code again, and a warning that the
     messages stop in ``REACTIVATION_SUNSET_DAYS`` (15; timing
     ``sunset_after``) days.
  4. ``sunset`` (15 days later): recorded, and ``customer.sunset`` is
     emitted, the event the sunset flow (``rules/sunset.py``) starts on: it
     asks "¿sigues interesado?" and pauses marketing when the answer is no
     or none, so the stop is the customer's to refuse, with the sunset's own
     texts and consent handling. Exit ``sunset``. With ``FLOWS`` set, name
     ``sunset`` too, or the emitted event reaches no flow.
- **Exits**: any ``order.placed`` ends the run at every step (``ordered``),
  silently: the post-purchase series thanks them. Opt-out: the run goes on,
  the send policy skips its messages. An agent holding the conversation:
  messages due meanwhile are skipped by the policy.
- **The service's own sunset**: ``customer.sunset`` also fires
  ``SUNSET_AFTER_DAYS`` (180) after the last order or reply, i.e. between
  the incentive and the last offer with the defaults; a store running this
  flow should set ``SUNSET_AFTER_DAYS`` past the last month plus the 15
  days (e.g. 400), so the sunset comes once, from here.
- **WhatsApp templates**: ``reactivation_checkin`` {{1}}=first name,
  ``reactivation_incentive`` {{1}}=first name {{2}}=code,
  ``reactivation_last_offer`` {{1}}=first name {{2}}=code {{3}}=days.

```mermaid
stateDiagram-v2
    [*] --> checkin: customer.inactive
    [*] --> [*]: never ordered (no_orders)
    checkin --> incentive: 2nd threshold (6 months)
    checkin --> [*]: order.placed, any step (ordered)
    incentive --> last_offer: 3rd threshold (12 months)
    last_offer --> sunset: 15 days, emits customer.sunset
    sunset --> [*]: sunset
```
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.commands import (
    after,
    config,
    customer,
    days,
    emit,
    exit_flow,
    issue_code,
    send,
    step,
    timing,
)
from bot.flows import Flow, m, ruleset, when_all
from rules._library import setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "checkin": "Hola, {first_name}. Hace tiempo que no te vemos por la tienda. ¿Todo bien? "
                   "Si necesitas algo, escríbenos por aquí.",
        "incentive": "¡Te extrañamos, {first_name}! Para tu próxima compra tienes un 10% de "
                     "descuento con el código {code}.",
        "last_offer": "Última oportunidad, {first_name}: tu código {code} sigue activo. Si no "
                      "sabemos de ti, en {days} días dejaremos de escribirte.",
        "customer": "cliente",
    },
    "pt": {
        "checkin": "Olá, {first_name}. Faz tempo que não te vemos na loja. Está tudo bem? "
                   "Se precisar de algo, escreva para nós por aqui.",
        "incentive": "Sentimos sua falta, {first_name}! Na sua próxima compra você tem 10% de "
                     "desconto com o cupom {code}.",
        "last_offer": "Última chance, {first_name}: seu cupom {code} continua ativo. Se não "
                      "tivermos notícias suas, em {days} dias vamos parar de escrever.",
        "customer": "cliente",
    },
    "en": {
        "checkin": "Hi {first_name}. We have not seen you at the store for a while. All good? "
                   "If you need anything, just write to us here.",
        "incentive": "We miss you, {first_name}! Enjoy 10% off your next order with the code "
                     "{code}.",
        "last_offer": "Last chance, {first_name}: your code {code} is still active. If we do "
                      "not hear from you, we will stop writing in {days} days.",
        "customer": "there",
    },
}

FLOW = Flow(
    "reactivation",
    triggers=("customer.inactive",),
    reentry_after=0,
    marketing=True,
    on_by_default=False,
    templates={
        "checkin": "reactivation_checkin",
        "incentive": "reactivation_incentive",
        "last_offer": "reactivation_last_offer",
    },
    steps={"checkin": "send", "incentive": "send", "last_offer": "send", "sunset": "record"},
    edges=(
        ("started", "checkin", "customer.inactive"),
        ("started", "exit:no_orders", "never ordered"),
        ("checkin", "incentive", "2nd threshold (6 months)"),
        ("checkin", "exit:ordered", "order.placed, any step"),
        ("incentive", "last_offer", "3rd threshold (12 months)"),
        ("last_offer", "sunset", "15 days, emits customer.sunset"),
        ("sunset", "exit:sunset"),
    ),
    description="After months without an order: check in, an incentive, a last offer, sunset.",
)

MONTH = timedelta(days=30)
DEFAULT_MONTHS = [3, 6, 12]
# The store's flow settings file ([flows.reactivation.timings]) wins over
# REACTIVATION_SUNSET_DAYS; the months are REACTIVATION_MONTHS only.
TIMINGS = {"sunset_after": days(15)}


def sunset_wait(c: Any) -> float:
    """Seconds from the last offer to the sunset."""
    return timing(c, "sunset_after", setting_days(c, "reactivation_sunset_days", 15))


def when(c: Any, month: int) -> datetime:
    """``month`` months after the last order; now when that has passed (or no order is known)."""
    now = datetime.fromisoformat(str(c.m.at))
    last = customer(c)["last_order_at"]
    base = datetime.fromisoformat(last) if last else now
    return max(base + month * MONTH, now)


with ruleset(FLOW.name):

    @when_all(m.type == "customer.inactive")
    def inactive(c):
        if not customer(c)["orders_count"]:
            exit_flow(c, "no_orders")
            return
        _, incentive_at, last_at = config(c, "reactivation_months", DEFAULT_MONTHS)
        send(c, say(c, TEXTS, "checkin"), step="checkin",
             template=(FLOW.templates["checkin"], [template_name(c, TEXTS)]))
        after(c, None, {"type": "reactivation.incentive"}, at=when(c, incentive_at))
        last = when(c, last_at)
        after(c, None, {"type": "reactivation.last_offer"}, at=last)
        after(c, None, {"type": "reactivation.sunset"},
              at=last + timedelta(seconds=sunset_wait(c)))

    @when_all(m.type == "order.placed")
    def ordered(c):
        exit_flow(c, "ordered")

    @when_all(m.type == "reactivation.incentive")
    def incentive(c):
        code = issue_code(c, "reactivation")
        send(c, say(c, TEXTS, "incentive", code=code), step="incentive",
             template=(FLOW.templates["incentive"], [template_name(c, TEXTS), code]))

    @when_all(m.type == "reactivation.last_offer")
    def last_offer(c):
        code = issue_code(c, "reactivation")  # the same code as the incentive's
        wait = str(round(sunset_wait(c) / days(1)))
        send(c, say(c, TEXTS, "last_offer", code=code, days=wait), step="last_offer",
             template=(FLOW.templates["last_offer"], [template_name(c, TEXTS), code, wait]))

    @when_all(m.type == "reactivation.sunset")
    def sunset(c):
        step(c, "sunset", "handed_over")
        emit(c, {"type": "customer.sunset"})
        exit_flow(c, "sunset")
