"""Birthday series: a notice a week before, the code on the day, then thanks or a reminder.

Off by default: a store switches it on by naming it in ``FLOWS`` or with
``[flows.birthday_series] enabled = true`` in the flow settings file. It
replaces the one-message ``birthday`` flow (``Flow.replaces``): when both are
chosen, ``birthday`` is left out, so nobody is greeted twice.

- **Triggers**: ``customer.birthday_soon`` (the service fires it at 10:00
  local ``BIRTHDAY_NOTICE_DAYS``, 7, days before the birthday; only while a
  flow starts on it) and ``customer.birthday`` (10:00 local on the day). A
  customer whose birthday is closer than the notice when the store first
  tells us about it (or who had no consent at the notice) starts on the day,
  at the greeting. Marketing: the run starts only with marketing consent
  granted on some channel, and every message passes the send policy
  (consent, quiet hours, an agent's hold, WhatsApp's window). Re-entry after
  300 days: one series a year.
- **Steps**:
  1. ``notice``: "your birthday is coming, a gift is waiting for you"; no
     code yet.
  2. ``greeting``: on the day, a happy birthday with a single-use code
     (``issue_code(c, "birthday")``, as ``birthday`` does). An order between
     the notice and the day does not change that: the gift was promised for
     the birthday, and the code is for the next order.
  3. Then a wait of ``BIRTHDAY_REMINDER_DAYS`` (3; timing ``reminder_after``):
     an ``order.placed`` placed after the greeting sends ``thanks`` ("thanks for
     celebrating with us") and ends the run (``purchased``); otherwise, when
     the wait is up, ``reminder`` sends the code again and ends it
     (``reminded``).
- **Exits**: ``purchased``, ``reminded``; no channel with consent left at the
  greeting or the reminder (the customer opted out): ``opted_out``, nothing
  sent. Safety net: a run that never reaches its end (the birthday moved
  after the notice) ends after the notice days plus the reminder days plus 2
  (timing ``max_run``), silently (``expired``). While a person holds the
  conversation the send policy holds each message (skipped, reason
  recorded) and the series goes on.
- **WhatsApp templates**: ``birthday_notice`` {{1}}=first name,
  ``birthday_greeting`` {{1}}=first name {{2}}=code (the same as ``birthday``),
  ``birthday_reminder`` {{1}}=first name {{2}}=code, ``birthday_thanks``
  {{1}}=first name.

```mermaid
stateDiagram-v2
    [*] --> notice: customer.birthday_soon
    [*] --> greeting: customer.birthday
    notice --> greeting: customer.birthday
    notice --> [*]: the birthday never came (expired)
    greeting --> thanks: order.placed
    greeting --> reminder: 3 days, no order
    greeting --> [*]: no consent left, any step (opted_out)
    thanks --> [*]: purchased
    reminder --> [*]: reminded
```
"""

from __future__ import annotations

from bot.commands import after, days, exit_flow, issue_code, send, timing
from bot.flows import Context, Flow, m, ruleset, when_all
from rules._library import moment, reachable, setting_days
from rules._texts import say, template_name

TEXTS = {  # say() picks the customer's language; a store may change them (FLOWS_CONFIG)
    "es": {
        "notice": "¡Hola, {first_name}! Se acerca tu cumpleaños 🎉 y tenemos un regalo "
                  "esperándote. Te lo mandamos el día.",
        "greeting": "¡Feliz cumpleaños, {first_name}! 🎂 Tu regalo: un 15% con el código "
                    "{code}.",
        "reminder": "{first_name}, tu regalo de cumpleaños sigue esperándote: un 15% con el "
                    "código {code}.",
        "thanks": "¡Gracias por festejar tu cumpleaños con nosotros, {first_name}! 🎁 "
                  "Esperamos que disfrutes tu compra.",
        "customer": "cliente",
    },
    "pt": {
        "notice": "Olá, {first_name}! Seu aniversário está chegando 🎉 e temos um presente "
                  "esperando por você. Enviamos no dia.",
        "greeting": "Feliz aniversário, {first_name}! 🎂 Seu presente: 15% de desconto com o "
                    "código {code}.",
        "reminder": "{first_name}, seu presente de aniversário continua esperando: 15% de "
                    "desconto com o código {code}.",
        "thanks": "Obrigado por comemorar seu aniversário com a gente, {first_name}! 🎁 "
                  "Esperamos que você aproveite sua compra.",
        "customer": "cliente",
    },
    "en": {
        "notice": "Hi {first_name}! Your birthday is coming 🎉 and a gift is waiting for you. "
                  "We'll send it on the day.",
        "greeting": "Happy birthday, {first_name}! 🎂 Your gift: 15% off with the code {code}.",
        "reminder": "{first_name}, your birthday gift is still waiting: 15% off with the code "
                    "{code}.",
        "thanks": "Thanks for celebrating your birthday with us, {first_name}! 🎁 We hope you "
                  "enjoy your order.",
        "customer": "there",
    },
}

FLOW = Flow(
    "birthday_series",
    triggers=("customer.birthday_soon", "customer.birthday"),
    reentry_after=days(300),
    marketing=True,
    on_by_default=False,
    replaces=("birthday",),
    templates={
        "notice": "birthday_notice",
        "greeting": "birthday_greeting",
        "reminder": "birthday_reminder",
        "thanks": "birthday_thanks",
    },
    steps={"notice": "send", "greeting": "send", "thanks": "send", "reminder": "send"},
    edges=(
        ("started", "notice", "customer.birthday_soon"),
        ("started", "greeting", "customer.birthday"),
        ("notice", "greeting", "customer.birthday"),
        ("notice", "exit:expired", "the birthday never came"),
        ("greeting", "thanks", "order.placed"),
        ("greeting", "reminder", "3 days, no order"),
        ("greeting", "exit:opted_out", "no consent left, any step"),
        ("thanks", "exit:purchased"),
        ("reminder", "exit:reminded"),
    ),
    description="A birthday notice a week before, the code on the day, then thanks for an "
                "order or a reminder of the code.",
)

# The waits a store may change (flow settings file, [flows.birthday_series.timings]);
# they win over BIRTHDAY_REMINDER_DAYS and the safety net's default.
TIMINGS = {"reminder_after": days(3), "max_run": days(12)}
SAFETY_MARGIN_DAYS = 2.0


def max_run(c: Context) -> float:
    """The safety net: the notice days plus the reminder days plus a margin."""
    span = (setting_days(c, "birthday_notice_days", 7)
            + setting_days(c, "birthday_reminder_days", 3) + days(SAFETY_MARGIN_DAYS))
    return timing(c, "max_run", span)


def start(c: Context) -> None:
    """Once per run: the safety net."""
    if not c.s.started:
        c.s.started = True
        after(c, max_run(c), {"type": "birthday_series.expire"}, key="expire")


with ruleset(FLOW.name):

    @when_all(m.type == "customer.birthday_soon")
    def notice(c: Context) -> None:
        if c.s.started:
            return  # a notice while the series runs (the store sent the birthday again)
        start(c)
        c.s.on = str(c.m.on or "")
        send(c, say(c, TEXTS, "notice"), step="notice",
             template=(FLOW.templates["notice"], [template_name(c, TEXTS)]))

    @when_all(m.type == "customer.birthday")
    def greeting(c: Context) -> None:
        if c.s.code:
            return  # greeted already
        start(c)
        if not reachable(c):
            exit_flow(c, "opted_out")
            return
        code = issue_code(c, "birthday")
        c.s.code = code
        c.s.greeted_at = str(c.m.at)
        send(c, say(c, TEXTS, "greeting", code=code), step="greeting",
             template=(FLOW.templates["greeting"], [template_name(c, TEXTS), code]))
        wait = setting_days(c, "birthday_reminder_days", 3)
        after(c, timing(c, "reminder_after", wait), {"type": "birthday_series.remind"},
              key="remind")

    @when_all(m.type == "order.placed")
    def ordered(c: Context) -> None:
        greeted = moment(c.s.greeted_at)
        placed = moment(c.m.occurred_at)
        if greeted is None or (placed is not None and placed < greeted):
            return  # before the greeting: the birthday gift still comes on the day
        send(c, say(c, TEXTS, "thanks"), step="thanks",
             template=(FLOW.templates["thanks"], [template_name(c, TEXTS)]))
        exit_flow(c, "purchased")

    @when_all(m.type == "birthday_series.remind")
    def remind(c: Context) -> None:
        if not reachable(c):
            exit_flow(c, "opted_out")
            return
        send(c, say(c, TEXTS, "reminder", code=c.s.code), step="reminder",
             template=(FLOW.templates["reminder"], [template_name(c, TEXTS), c.s.code]))
        exit_flow(c, "reminded")

    @when_all(m.type == "birthday_series.expire")
    def expire(c: Context) -> None:
        exit_flow(c, "expired")
