"""Welcome series: greet a new customer, teach, reassure, and bring the first order.

Off by default: a store switches it on by naming it in ``FLOWS`` (e.g.
``FLOWS=welcome,cart_recovery,...``), so existing stores get no new messages.

- **Trigger**: ``customer.created``, or ``consent.confirmed`` (the double
  opt-in flow's, when a pending opt-in is confirmed). Marketing: the run
  starts only for a customer with marketing consent granted on some channel,
  and every message passes the send policy (consent, quiet hours, an agent's
  hold, WhatsApp's window). A customer whose consent is still pending at
  sign-up gets nothing yet: the double opt-in flow asks them to confirm
  first, and the series starts when they do.
  Once per customer (no re-entry).
- **Steps** (the days count from sign-up; each is a setting, see the README):
  1. ``welcome``: a welcome with a single-use first-purchase code
     (``issue_code(c, "welcome")``), at once.
  2. ``education``: how to buy and that questions are answered here
     (``WELCOME_EDUCATION_DAYS``, 1).
  3. ``reminder``: the code again, if still unused (``WELCOME_REMINDER_DAYS``,
     2); unused means no order yet (``orders_count == 0``).
  4. ``testimonial``: what another customer said (``WELCOME_TESTIMONIAL_DAYS``,
     4).
  5. ``last_reminder``: the code once more, if still unused
     (``WELCOME_LAST_REMINDER_DAYS``, 7); then the series ends (``completed``).
- **Exits**: the first ``order.placed`` ends the series at any step, silently
  (``purchased``; the order's own messages are other flows'). A customer who
  already ordered when the sign-up arrives (stores may send the order first)
  gets no welcome (``already_customer``). A step that finds no channel with
  consent left (the customer opted out) ends the run (``opted_out``). While a
  person holds the conversation the steps are held by the send policy
  (skipped, reason recorded) and the series goes on afterwards.
- **WhatsApp templates**: ``welcome_code`` {{1}}=first name {{2}}=code,
  ``welcome_education`` {{1}}=first name, ``welcome_code_reminder`` {{1}}=first
  name {{2}}=code, ``welcome_testimonial`` {{1}}=first name,
  ``welcome_code_last_reminder`` {{1}}=first name {{2}}=code.

The texts are examples a store replaces with its own (the testimonial above
all). Replies go to the inbox flow, which answers them.

```mermaid
stateDiagram-v2
    [*] --> welcome: customer.created or consent.confirmed
    [*] --> [*]: has ordered (already_customer)
    welcome --> education: 1 day
    welcome --> [*]: order.placed, any step (purchased)
    welcome --> [*]: no consent left, any step (opted_out)
    education --> reminder: 2 days, no order
    reminder --> testimonial: 4 days
    testimonial --> last_reminder: 7 days, no order
    last_reminder --> [*]: completed
```
"""

from __future__ import annotations

from bot.commands import after, customer, days, exit_flow, issue_code, send, timing
from bot.flows import Context, Flow, m, ruleset, when_all
from rules._library import reachable, setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "welcome": "¡Hola, {first_name}! Te damos la bienvenida 🎉 Para tu primera compra "
                   "tienes un descuento con el código {code}.",
        "education": "{first_name}, un dato útil: por aquí puedes preguntarnos por talles, "
                     "envíos y medios de pago, y te respondemos enseguida.",
        "reminder": "Hola, {first_name}. Tu código de bienvenida {code} sigue disponible "
                    "para tu primera compra.",
        "testimonial": "«Llegó rápido y es tal cual las fotos. ¡Voy a volver a comprar!» "
                       "Eso nos escribió una clienta esta semana, {first_name}.",
        "last_reminder": "{first_name}, última oportunidad: tu código {code} te espera para "
                         "tu primera compra. ¿Te ayudamos a elegir? Respóndenos por aquí.",
        "customer": "cliente",
    },
    "pt": {
        "welcome": "Olá, {first_name}! Boas-vindas 🎉 Na sua primeira compra você tem um "
                   "desconto com o cupom {code}.",
        "education": "{first_name}, uma dica: por aqui você pode perguntar sobre tamanhos, "
                     "frete e formas de pagamento, e respondemos rapidinho.",
        "reminder": "Olá, {first_name}. Seu cupom de boas-vindas {code} continua válido "
                    "para a sua primeira compra.",
        "testimonial": "«Chegou rápido e é igual às fotos. Vou comprar de novo!» "
                       "Foi o que uma cliente nos escreveu esta semana, {first_name}.",
        "last_reminder": "{first_name}, última chance: seu cupom {code} está esperando pela "
                         "sua primeira compra. Quer ajuda para escolher? Responda por aqui.",
        "customer": "cliente",
    },
    "en": {
        "welcome": "Hi {first_name}! Welcome aboard 🎉 Your first order gets a discount "
                   "with the code {code}.",
        "education": "{first_name}, good to know: you can ask us here about sizes, shipping "
                     "and payment, and we answer right away.",
        "reminder": "Hi {first_name}. Your welcome code {code} is still waiting for your "
                    "first order.",
        "testimonial": "\"Arrived fast and looks just like the photos. I'll be back!\" "
                       "That is what a customer wrote to us this week, {first_name}.",
        "last_reminder": "{first_name}, last chance: your code {code} is waiting for your "
                         "first order. Need help choosing? Just reply here.",
        "customer": "there",
    },
}

FLOW = Flow(
    "welcome",
    triggers=("customer.created", "consent.confirmed"),
    reentry_after=None,
    marketing=True,
    on_by_default=False,
    templates={
        "welcome": "welcome_code",
        "education": "welcome_education",
        "reminder": "welcome_code_reminder",
        "testimonial": "welcome_testimonial",
        "last_reminder": "welcome_code_last_reminder",
    },
    steps={
        "welcome": "send",
        "education": "send",
        "reminder": "send",
        "testimonial": "send",
        "last_reminder": "send",
    },
    edges=(
        ("started", "welcome", "customer.created or consent.confirmed"),
        ("started", "exit:already_customer", "has ordered"),
        ("welcome", "education", "1 day"),
        ("welcome", "exit:purchased", "order.placed, any step"),
        ("welcome", "exit:opted_out", "no consent left, any step"),
        ("education", "reminder", "2 days, no order"),
        ("reminder", "testimonial", "4 days"),
        ("testimonial", "last_reminder", "7 days, no order"),
        ("last_reminder", "exit:completed"),
    ),
    description="Sign-up: a welcome code, a tip, a testimonial, two reminders; ends at the "
                "first order.",
)

# The later steps: (step, its timing, the setting of its day counted from sign-up,
# default days). The store's flow settings file ([flows.welcome.timings]) wins
# over the setting.
SCHEDULE = (
    ("education", "education_after", "welcome_education_days", 1.0),
    ("reminder", "reminder_after", "welcome_reminder_days", 2.0),
    ("testimonial", "testimonial_after", "welcome_testimonial_days", 4.0),
    ("last_reminder", "last_reminder_after", "welcome_last_reminder_days", 7.0),
)
TIMINGS = {name: days(default) for _, name, _, default in SCHEDULE}


def ordered(c: Context) -> bool:
    """The first-purchase code is used up once the customer has any order."""
    return int(customer(c)["orders_count"] or 0) > 0


def send_welcome(c: Context) -> None:
    code = issue_code(c, "welcome")
    c.s.code = code
    send(c, say(c, TEXTS, "welcome", code=code), step="welcome",
         template=(FLOW.templates["welcome"], [template_name(c, TEXTS), code]))


def send_education(c: Context) -> None:
    send(c, say(c, TEXTS, "education"), step="education",
         template=(FLOW.templates["education"], [template_name(c, TEXTS)]))


def send_reminder(c: Context) -> None:
    send(c, say(c, TEXTS, "reminder", code=c.s.code), step="reminder",
         template=(FLOW.templates["reminder"], [template_name(c, TEXTS), c.s.code]))


def send_testimonial(c: Context) -> None:
    send(c, say(c, TEXTS, "testimonial"), step="testimonial",
         template=(FLOW.templates["testimonial"], [template_name(c, TEXTS)]))


def send_last_reminder(c: Context) -> None:
    send(c, say(c, TEXTS, "last_reminder", code=c.s.code), step="last_reminder",
         template=(FLOW.templates["last_reminder"], [template_name(c, TEXTS), c.s.code]))


STEPS = {"education": send_education, "reminder": send_reminder,
         "testimonial": send_testimonial, "last_reminder": send_last_reminder}
REMINDERS = ("reminder", "last_reminder")


with ruleset(FLOW.name):

    @when_all((m.type == "customer.created") | (m.type == "consent.confirmed"))
    def signed_up(c: Context) -> None:
        if c.s.code:
            return  # the store sent the sign-up again: one series is enough
        if ordered(c):
            exit_flow(c, "already_customer")
            return
        send_welcome(c)
        for name, wait, setting, default in SCHEDULE:
            after(c, timing(c, wait, setting_days(c, setting, default)),
                  {"type": "welcome.step", "step": name}, key=name)

    @when_all(m.type == "order.placed")
    def first_order(c: Context) -> None:
        exit_flow(c, "purchased")

    @when_all(m.type == "welcome.step")
    def next_step(c: Context) -> None:
        name = str(c.m.step)
        if name in REMINDERS and ordered(c):
            exit_flow(c, "purchased")
            return
        if not reachable(c):
            exit_flow(c, "opted_out")
            return
        STEPS[name](c)
        done = [*(c.s.done or []), name]
        c.s.done = done
        if len(set(done)) == len(SCHEDULE):
            exit_flow(c, "completed")
