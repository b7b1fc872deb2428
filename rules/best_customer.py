"""Best-customer reward: thank the store's top spenders with a gift, in a quiet moment.

Off by default: a store switches it on by naming it in ``FLOWS``.

- **Trigger**: ``order.placed`` after which the customer's ``total_spent`` in
  ``BEST_CUSTOMER_CURRENCY`` (ARS) is more than ``BEST_CUSTOMER_THRESHOLD``
  (100000); other currencies are not converted. Marketing (needs consent). A
  customer is rewarded at most once a year (``REWARD_EVERY_DAYS``; the time is
  the attribute ``best_customer_rewarded_at``). Every other order ends its run
  at once (``below_threshold`` or ``already_rewarded``): the runtime starts a
  run before the rules see the order, so that is where the test can be.
- **Steps**:
  1. ``qualified``: recorded with the amount; waits
     ``BEST_CUSTOMER_DELAY_DAYS`` (14).
  2. Then the check: no order since (``last_order_at`` unchanged) -> ``reward``,
     a thank-you with a single-use code (``issue_code(c, "best_customer")``),
     ends ``rewarded``. Ordered since -> ``postponed`` (recorded), and the
     same wait again from that last order, so the reward never lands on the
     heels of a purchase and no order loses it.
- **Exits**: no channel with consent left at the check: ``opted_out``,
  nothing sent. While a person holds the conversation the send policy holds
  the reward (skipped, reason recorded).
- **WhatsApp template**: ``best_customer_reward`` {{1}}=first name {{2}}=code.

```mermaid
stateDiagram-v2
    [*] --> qualified: order.placed, spent over the threshold
    [*] --> [*]: at or under the threshold (below_threshold)
    [*] --> [*]: rewarded in the last year (already_rewarded)
    qualified --> reward: 14 days, no order since
    qualified --> postponed: ordered since
    qualified --> [*]: no consent left, any step (opted_out)
    postponed --> postponed: ordered since
    postponed --> reward: 14 days after the last order
    reward --> [*]: rewarded
```
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands import (
    after,
    config,
    customer,
    days,
    exit_flow,
    issue_code,
    send,
    set_attr,
    step,
    timing,
)
from bot.flows import Context, Flow, m, ruleset, when_all
from bot.segments import spent_over
from rules._library import moment, reachable, setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "reward": "¡{first_name}, gracias por elegirnos tantas veces! Estás entre nuestros "
                  "mejores clientes y te preparamos un regalo: usa el código {code} en tu "
                  "próxima compra.",
        "customer": "cliente",
    },
    "pt": {
        "reward": "{first_name}, obrigado por nos escolher tantas vezes! Você está entre os "
                  "nossos melhores clientes e preparamos um presente: use o cupom {code} na "
                  "sua próxima compra.",
        "customer": "cliente",
    },
    "en": {
        "reward": "{first_name}, thank you for choosing us so often! You are one of our best "
                  "customers, so here is a gift: use the code {code} on your next order.",
        "customer": "there",
    },
}

FLOW = Flow(
    "best_customer",
    triggers=("order.placed",),
    reentry_after=0,
    marketing=True,
    on_by_default=False,
    templates={"reward": "best_customer_reward"},
    steps={"qualified": "record", "postponed": "record", "reward": "send"},
    edges=(
        ("started", "qualified", "order.placed, spent over the threshold"),
        ("started", "exit:below_threshold", "at or under the threshold"),
        ("started", "exit:already_rewarded", "rewarded in the last year"),
        ("qualified", "reward", "14 days, no order since"),
        ("qualified", "postponed", "ordered since"),
        ("qualified", "exit:opted_out", "no consent left, any step"),
        ("postponed", "postponed", "ordered since"),
        ("postponed", "reward", "14 days after the last order"),
        ("reward", "exit:rewarded"),
    ),
    description="Total spent passes a threshold: after a quiet spell, a reward with a code.",
)

REWARDED_AT = "best_customer_rewarded_at"  # the customer attribute: the last reward's time
REWARD_EVERY_DAYS = 365
# The wait a store may change (flow settings file, [flows.best_customer.timings]);
# it wins over BEST_CUSTOMER_DELAY_DAYS.
TIMINGS = {"reward_after": days(14)}


def rewarded_lately(c: Context) -> bool:
    last = moment(customer(c)["attrs"].get(REWARDED_AT))
    now = moment(c.m.at)
    return last is not None and now is not None and now - last < timedelta(
        days=REWARD_EVERY_DAYS)


def over_threshold(c: Context) -> bool:
    amount = str(config(c, "best_customer_threshold", "100000"))
    currency = str(config(c, "best_customer_currency", "ARS"))
    return spent_over(amount, currency)(customer(c))


def reward_after(c: Context) -> float:
    """The quiet spell before the reward: the flow settings file's, else the setting."""
    return timing(c, "reward_after", setting_days(c, "best_customer_delay_days", 14))


def wait_from_last_order(c: Context) -> None:
    """Check again ``BEST_CUSTOMER_DELAY_DAYS`` after the last order (at once if past)."""
    delay = reward_after(c)
    last, now = moment(c.s.last_order_at), moment(c.m.at)
    left = delay if last is None or now is None else (
        last + timedelta(seconds=delay) - now).total_seconds()
    after(c, max(left, 0.0), {"type": "best_customer.check"}, key="check")


with ruleset(FLOW.name):

    @when_all(m.type == "order.placed")
    def order_placed(c: Context) -> None:
        if c.s.phase:
            return  # an order during the wait: the check sees it
        if rewarded_lately(c):
            exit_flow(c, "already_rewarded")
        elif not over_threshold(c):
            exit_flow(c, "below_threshold")
        else:
            c.s.phase = "qualified"
            c.s.last_order_at = customer(c)["last_order_at"]
            step(c, "qualified", "ok", total_spent=dict(customer(c)["total_spent"]))
            after(c, reward_after(c), {"type": "best_customer.check"}, key="check")

    @when_all(m.type == "best_customer.check")
    def check(c: Context) -> None:
        last = customer(c)["last_order_at"]
        if last != c.s.last_order_at:
            c.s.last_order_at = last
            step(c, "postponed", "ordered since", last_order_at=last)
            wait_from_last_order(c)
        elif not reachable(c):
            exit_flow(c, "opted_out")
        else:
            code = issue_code(c, "best_customer")
            send(c, say(c, TEXTS, "reward", code=code), step="reward",
                 template=(FLOW.templates["reward"], [template_name(c, TEXTS), code]))
            set_attr(c, REWARDED_AT, str(c.m.at))
            exit_flow(c, "rewarded")
