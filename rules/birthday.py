"""Birthday greeting: the smallest complete flow, and the README's example.

- Trigger: ``customer.birthday`` (the service fires it at 10:00 on the
  customer's birthday, in the customer's own timezone).
- Steps: ``greeting``: a happy-birthday message with a single-use code.
- Waits: none. Exits: right after the greeting (``greeted``).
- Re-entry: after 300 days, so once a year.
- WhatsApp: outside the 24-hour window the greeting goes out as the approved
  template ``birthday_greeting`` (first name, code).

```mermaid
stateDiagram-v2
    [*] --> greeting: customer.birthday
    greeting --> [*]: greeted
```
"""

from __future__ import annotations

from bot.commands import customer, days, exit_flow, issue_code, send
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import say

TEXTS = {  # say() picks the customer's language; a store may change them (FLOWS_CONFIG)
    "es": {"greeting": "¡Feliz cumpleaños, {first_name}! 🎂 "
                       "Te regalamos un 15% con el código {code}."},
    "pt": {"greeting": "Feliz aniversário, {first_name}! 🎂 "
                       "Ganhe 15% de desconto com o código {code}."},
    "en": {"greeting": "Happy birthday, {first_name}! 🎂 Enjoy 15% off with the code {code}."},
}

FLOW = Flow(
    "birthday",
    triggers=("customer.birthday",),
    reentry_after=days(300),
    templates={"greeting": "birthday_greeting"},
    steps={"greeting": "send"},
    edges=(
        ("started", "greeting", "customer.birthday"),
        ("greeting", "exit:greeted"),
    ),
    description="A birthday greeting with a single-use code.",
)

with ruleset(FLOW.name):

    @when_all(m.type == "customer.birthday")
    def greet(c):
        name = customer(c)["first_name"] or ""
        code = issue_code(c, "birthday")
        send(c, say(c, TEXTS, "greeting", code=code), step="greeting",
             template=(FLOW.templates["greeting"], [name, code]))
        exit_flow(c, "greeted")
