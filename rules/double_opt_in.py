"""Double opt-in: a store's opt-in counts only once the customer confirms it on the channel.

- **Trigger**: ``consent.pending`` (carries ``channel``), posted by the
  service when a channel's consent becomes ``pending``: a store's opt-in on a
  channel named in ``DOUBLE_OPT_IN``, or a store sending ``"pending"`` as the
  consent value. Nothing else starts it, so with ``DOUBLE_OPT_IN`` unset and
  no ``"pending"`` from the store it never sends anything: that is why it is
  on by default (a store that lists its flows in ``FLOWS`` must name it when
  it uses double opt-in, or pending consents are never confirmed).
- **Messages**: all transactional (the customer has not consented to
  marketing yet, and this is what the store's sign-up asked for), on the
  channel that is pending. Outside WhatsApp's 24-hour window each goes as its
  approved template (``double_opt_in_request``, ``double_opt_in_reminder``,
  ``double_opt_in_last_reminder``).
- **Steps**, per pending channel (several may be pending in one run):
  1. ``request``: "reply YES to confirm you want our news" [yes / no].
  2. yes (a tap, "SI", "sim", "yes", "1") -> consent granted on that channel
     (``set_consent(channel, "granted", "double_opt_in:<channel>")``; the
     ledger keeps the run, the words typed and their message id: the
     confirmation the consent proof shows), a thank-you (``confirmed``).
  3. no -> consent revoked (source ``double_opt_in:<channel>``), a short
     acknowledgement (``declined``).
  4. no answer: ``reminder`` after ``DOUBLE_OPT_IN_REMINDER_DAYS`` (2),
     ``last_reminder`` at ``DOUBLE_OPT_IN_LAST_REMINDER_DAYS`` (7) after the
     request; ``DOUBLE_OPT_IN_EXPIRE_DAYS`` (2) after that the pending
     consent is closed as revoked with source ``double_opt_in:expired``,
     silently (``expired``), so no opt-in stays pending for ever.
  5. consent settled another way meanwhile (STOP or START/ALTA/VOLTAR, which
     the service applies at once, or a store's own change): no more
     reminders for that channel (``settled`` at its next due reminder).
  Any other message on the channel is not an answer: it goes on to the
  inbox flow as usual.
- **Exits**: when no channel of the customer is pending any more, with the
  outcome of the last one settled: ``confirmed``, ``declined``, ``expired``
  or ``settled``. A customer may enter again at once (a new pending consent).

```mermaid
stateDiagram-v2
    [*] --> request: consent.pending
    request --> request: another channel pending
    request --> confirmed: yes
    request --> declined: no
    request --> reminder: 2 days
    request --> settled: STOP / START meanwhile
    reminder --> confirmed: yes
    reminder --> declined: no
    reminder --> last_reminder: 1 week
    reminder --> settled: STOP / START meanwhile
    last_reminder --> confirmed: yes
    last_reminder --> declined: no
    last_reminder --> expired: 2 more days
    last_reminder --> settled: STOP / START meanwhile
    confirmed --> [*]: confirmed
    declined --> [*]: declined
    expired --> [*]: expired
    settled --> [*]: settled
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import (
    after,
    config,
    customer,
    days,
    emit,
    exit_flow,
    send,
    set_consent,
    step,
)
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import NO, YES, answer, say

TEXTS = {
    "es": {
        "request": "¡Hola, {first_name}! ¿Quieres recibir nuestras novedades y ofertas por "
                   "{channel}? Responde SÍ para confirmar.",
        "reminder": "Recordatorio: responde SÍ para confirmar que quieres recibir nuestras "
                    "novedades por {channel}.",
        "last_reminder": "Último recordatorio: si quieres recibir nuestras novedades por "
                         "{channel}, responde SÍ. Si no, no te escribiremos con promociones.",
        "yes": "Sí, quiero",
        "no": "No, gracias",
        "confirmed": "¡Gracias, {first_name}! Ya recibirás nuestras novedades por {channel}. "
                     "Si quieres dejar de recibirlas, responde BAJA.",
        "declined": "Entendido: no te enviaremos novedades por {channel}. Si cambias de "
                    "opinión, responde ALTA.",
    },
    "pt": {
        "request": "Olá, {first_name}! Quer receber nossas novidades e ofertas pelo "
                   "{channel}? Responda SIM para confirmar.",
        "reminder": "Lembrete: responda SIM para confirmar que quer receber nossas novidades "
                    "pelo {channel}.",
        "last_reminder": "Último lembrete: se quiser receber nossas novidades pelo {channel}, "
                         "responda SIM. Se não, não enviaremos promoções.",
        "yes": "Sim, quero",
        "no": "Não, obrigado",
        "confirmed": "Obrigado, {first_name}! Você vai receber nossas novidades pelo "
                     "{channel}. Para parar, responda SAIR.",
        "declined": "Entendido: não enviaremos novidades pelo {channel}. Se mudar de ideia, "
                    "responda VOLTAR.",
    },
    "en": {
        "request": "Hi {first_name}! Reply YES to confirm you want our news and offers on "
                   "{channel}.",
        "reminder": "Reminder: reply YES to confirm you want our news on {channel}.",
        "last_reminder": "Last reminder: if you want our news on {channel}, reply YES. "
                         "Otherwise we will not send you promotions.",
        "yes": "Yes, please",
        "no": "No, thanks",
        "confirmed": "Thanks, {first_name}! You will get our news on {channel}. To stop, "
                     "reply STOP.",
        "declined": "Got it: no news from us on {channel}. If you change your mind, reply "
                    "START.",
    },
}

FLOW = Flow(
    "double_opt_in",
    triggers=("consent.pending",),
    reentry_after=0,
    marketing=False,
    receives_messages=True,  # the answer may come on any pending channel, typed or tapped
    templates={"request": "double_opt_in_request", "reminder": "double_opt_in_reminder",
               "last_reminder": "double_opt_in_last_reminder"},
    steps={
        "request": "send",
        "reminder": "send",
        "last_reminder": "send",
        "confirmed": "send",
        "declined": "send",
        "expired": "record",
        "settled": "record",
    },
    edges=(
        ("started", "request", "consent.pending"),
        ("request", "request", "another channel pending"),
        ("request", "confirmed", "yes"),
        ("request", "declined", "no"),
        ("request", "reminder", "2 days"),
        ("request", "settled", "STOP / START meanwhile"),
        ("reminder", "confirmed", "yes"),
        ("reminder", "declined", "no"),
        ("reminder", "last_reminder", "1 week"),
        ("reminder", "settled", "STOP / START meanwhile"),
        ("last_reminder", "confirmed", "yes"),
        ("last_reminder", "declined", "no"),
        ("last_reminder", "expired", "2 more days"),
        ("last_reminder", "settled", "STOP / START meanwhile"),
        ("confirmed", "exit:confirmed"),
        ("declined", "exit:declined"),
        ("expired", "exit:expired"),
        ("settled", "exit:settled"),
    ),
    description="Ask the customer to confirm a store's opt-in before any marketing.",
)

CHANNEL_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "sms": "SMS", "email": "e-mail"}
CONFIRM = {
    "yes": (*YES, "si quiero", "sim quero", "yes please", "confirm"),
    "no": (*NO, "no gracias", "nao obrigado", "no thanks"),
}
REMIND = "double_opt_in.remind"
EXPIRE = "double_opt_in.expire"


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def pending(c: Any, channel: str) -> bool:
    """Whether ``channel``'s consent is still pending (STOP or START may have settled it)."""
    return bool(customer(c)["consents"].get(channel) == "pending")


def others_pending(c: Any, channel: str) -> bool:
    """Whether a channel besides ``channel`` still waits for its confirmation."""
    return any(state == "pending" and name != channel
               for name, state in customer(c)["consents"].items())


def wait_days(c: Any, name: str, default: float) -> float:
    return days(float(config(c, name, default)))


def choices(c: Any) -> list[tuple[str, str]]:
    return [(key, say(c, TEXTS, key)) for key in CONFIRM]


with ruleset(FLOW.name):

    @when_all(m.type == "consent.pending")
    def request(c):
        channel = str(c.m.channel)
        if not pending(c, channel):
            return
        send(c, say(c, TEXTS, "request", channel=channel_name(channel)), step="request",
             channel=channel, choices=choices(c), transactional=True)
        after(c, wait_days(c, "double_opt_in_reminder_days", 2),
              {"type": REMIND, "channel": channel, "last": False}, key=f"dopt:{channel}")

    @when_all(m.type == "message")
    def confirmation(c):
        channel = str(c.m.channel)
        if not pending(c, channel):
            return  # not about a pending channel: the inbox flow answers it
        said = answer(c, CONFIRM)
        if said == "yes":
            set_consent(c, channel, "granted", f"double_opt_in:{channel}")
            # What waited for a confirmed opt-in (the welcome series) may start now.
            emit(c, {"type": "consent.confirmed", "channel": channel})
            send(c, say(c, TEXTS, "confirmed", channel=channel_name(channel)),
                 step="confirmed", channel=channel, transactional=True)
            if not others_pending(c, channel):
                exit_flow(c, "confirmed")
        elif said == "no":
            set_consent(c, channel, "revoked", f"double_opt_in:{channel}")
            send(c, say(c, TEXTS, "declined", channel=channel_name(channel)),
                 step="declined", channel=channel, transactional=True)
            if not others_pending(c, channel):
                exit_flow(c, "declined")

    @when_all(m.type == REMIND)
    def remind(c):
        channel = str(c.m.channel)
        if not pending(c, channel):
            step(c, "settled", str(customer(c)["consents"].get(channel) or "none"),
                 channel=channel)
            if not others_pending(c, channel):
                exit_flow(c, "settled")
            return
        name = channel_name(channel)
        if c.m.last:
            send(c, say(c, TEXTS, "last_reminder", channel=name), step="last_reminder",
                 channel=channel, choices=choices(c), transactional=True)
            after(c, wait_days(c, "double_opt_in_expire_days", 2),
                  {"type": EXPIRE, "channel": channel}, key=f"dopt:{channel}")
            return
        send(c, say(c, TEXTS, "reminder", channel=name), step="reminder", channel=channel,
             choices=choices(c), transactional=True)
        first = float(config(c, "double_opt_in_reminder_days", 2))
        last = float(config(c, "double_opt_in_last_reminder_days", 7))
        after(c, days(last - first), {"type": REMIND, "channel": channel, "last": True},
              key=f"dopt:{channel}")

    @when_all(m.type == EXPIRE)
    def expire(c):
        channel = str(c.m.channel)
        if pending(c, channel):
            set_consent(c, channel, "revoked", "double_opt_in:expired")
            step(c, "expired", channel=channel)
            if not others_pending(c, channel):
                exit_flow(c, "expired")
            return
        step(c, "settled", str(customer(c)["consents"].get(channel) or "none"),
             channel=channel)
        if not others_pending(c, channel):
            exit_flow(c, "settled")
