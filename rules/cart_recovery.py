"""Cart recovery: win back an abandoned checkout and answer questions about it.

- **Trigger**: ``cart.abandoned``, derived by the service ``CART_ABANDON_AFTER``
  (1 h) after a ``checkout.started`` whose order did not arrive; it carries
  ``checkout_id``, ``recovery_url``, ``total``, ``currency`` and ``items``.
  Marketing (needs consent). A customer may enter again 7 days after a run ends.
- **Steps**:
  1. ``interested``: "still interested?" [yes / I have a question / no thanks];
     waits 24 h.
  2. yes -> ``link``: the recovery link and an offer of help; listens 24 h for
     questions (step 3), then exits ``link_sent`` silently.
  3. I have a question (or any free text) -> cart-assist chat, step ``question``:
     an FAQ answer (``rules/_faq.py``) followed by "anything else?", 24 h per
     turn, up to ``MAX_ANSWERS`` answers. Unsure (or too many turns) -> a
     "a person will answer you shortly" message and ``handoff``, exit
     ``handoff``. "No, thanks" -> the link again, exit ``chat_done``. 24 h
     of silence -> exit ``chat_idle``.
  4. no thanks -> ``why``: why? [price / shipping / just looking / other];
     waits 24 h; the answer is recorded (``step reason <reason>``, attr
     ``cart_declined_reason``), thanks, exit ``declined``.
  5. no reply to step 1 in 24 h -> ``reminder``: ONE message with a single-use
     code (``issue_code(c, "cart")``) and the link; listens 48 h (a reply is
     handled as in steps 2-4), then exits ``no_reply`` without more messages.
- **The fuller sequence** (LinkPort's five messages), only with the setting
  ``CART_RECOVERY_FULL`` (``config(c, "cart_recovery_full")``, off by default so
  existing stores get no new messages). Where a run would end without a
  purchase after the reminder (``no_reply``) or after the link (``link_sent``),
  it goes on instead:
  6. ``testimonial``: a short customer quote about the store and the link (no
     new code), ``testimonial_after`` (1 day) after that end.
  7. ``last_chance``: "your cart is about to expire", the reminder's code again
     (a code issued now when there was no reminder) and the link,
     ``last_chance_after`` (2 days) after the testimonial; listens
     ``listen_after_last_chance`` (24 h), then exits ``last_chance``.
  A reply to either is handled as a reply to the reminder (steps 2-4: a "yes"
  sends the link, and its 24 h of silence lead to the message not sent yet,
  ``last_chance_after`` later; after both, the run ends ``link_sent``). "No",
  a question, a hand-off and an order end the sequence as they do earlier.
- **Exits**: ``order.placed`` for a checkout of this run ends it at any step
  with a thank-you (``purchased``); another checkout's order does not. A
  run lasts at most ``MAX_RUN`` (5 days), then exits ``expired`` silently:
  a safety net so no run outlives its purpose. With the fuller sequence the
  net grows by the waits it adds (``max_run + testimonial_after +
  last_chance_after + listen_after_last_chance``, 9 days by default), so the
  last chance of the longest silent path (7 days) is not cut off.
- **WhatsApp templates** (the steps the flow starts on its own, outside the
  24 h window): ``cart_recovery_interested`` {{1}}=first name,
  ``cart_recovery_reminder`` {{1}}=first name {{2}}=code {{3}}=link,
  ``cart_recovery_testimonial`` {{1}}=first name {{2}}=link,
  ``cart_recovery_last_chance`` {{1}}=first name {{2}}=code {{3}}=link,
  ``cart_recovery_thanks`` (no parameters).

Decisions where the issue was silent: a free-text reply to step 1 that is no
choice is taken as the customer's question; a newer abandoned cart during a
run only updates the link (no second question); the code is issued only with
the reminder; "yes" keeps listening 24 h so the offered help is real. The
fuller sequence has no buttons (a reply is free text, as to the reminder), and
each of its two messages goes at most once per run: the run ends after both.

```mermaid
stateDiagram-v2
    [*] --> interested: cart.abandoned
    interested --> link: yes
    interested --> question: a question
    interested --> faq: free text
    interested --> handoff_notice: free text, unsure
    interested --> why: no thanks
    interested --> reminder: 24 h
    interested --> thanks: order.placed
    interested --> [*]: 5 days, any step (expired)
    reminder --> link: yes
    reminder --> question: a question
    reminder --> faq: writes
    reminder --> why: no
    reminder --> thanks: order.placed
    reminder --> [*]: 48 h (no_reply)
    reminder --> testimonial: 48 h + 1 day, full
    link --> faq: writes
    link --> thanks: order.placed
    link --> [*]: 24 h (link_sent)
    link --> testimonial: 24 h + 1 day, full
    link --> last_chance: 24 h + 2 days, full, after the testimonial
    testimonial --> link: yes
    testimonial --> question: a question
    testimonial --> faq: writes
    testimonial --> why: no
    testimonial --> thanks: order.placed
    testimonial --> last_chance: 2 days
    last_chance --> link: yes
    last_chance --> question: a question
    last_chance --> faq: writes
    last_chance --> why: no
    last_chance --> thanks: order.placed
    last_chance --> [*]: 24 h (last_chance)
    question --> faq: FAQ answer
    question --> question: yes, more
    question --> handoff_notice: unsure
    question --> close: no, thanks
    question --> [*]: 24 h (chat_idle)
    faq --> question: anything else?
    handoff_notice --> handoff
    handoff --> [*]: handoff
    close --> [*]: chat_done
    why --> reason: a reason
    why --> [*]: 24 h (declined)
    reason --> thanks_reason
    thanks_reason --> [*]: declined
    thanks --> [*]: purchased
```
"""

from __future__ import annotations

from typing import Any, Literal

from bot.commands import (
    after,
    ask,
    config,
    days,
    exit_flow,
    handoff,
    hours,
    issue_code,
    send,
    set_attr,
    step,
    timing,
)
from bot.flows import Flow, m, ruleset, when_all
from rules._faq import best_topic, match_faq
from rules._texts import NO, YES, answer, locale_of, say, template_name, words

TEXTS = {
    "es": {
        "interested": "¡Hola, {first_name}! Dejaste {cart} en tu carrito. ¿Sigues interesado?",
        "yes": "Sí, lo quiero",
        "question": "Tengo una pregunta",
        "no": "No, gracias",
        "some_products": "algunos productos",
        "and_more": "{title} y {n} producto(s) más",
        "link": "¡Genial! Tu carrito te espera aquí: {url}\n"
                "Si tienes alguna duda, escríbenos por aquí.",
        "link_code": "¡Genial! Tu carrito te espera aquí: {url}\n"
                     "Recuerda usar tu código {code}. Si tienes alguna duda, escríbenos.",
        "ask_question": "¡Claro! ¿Cuál es tu pregunta?",
        "anything_else": "¿Hay algo más en lo que pueda ayudarte?",
        "done": "No, gracias",
        "close": "¡Perfecto! Cuando quieras, tu carrito está aquí: {url}",
        "handoff": "Gracias por tu pregunta. Una persona de nuestro equipo te responderá "
                   "en breve por aquí.",
        "why": "Entendido. ¿Nos cuentas por qué? Nos ayuda a mejorar.",
        "price": "El precio",
        "shipping": "El envío",
        "just_looking": "Solo estaba mirando",
        "other": "Otro motivo",
        "thanks_reason": "¡Gracias por contarnos, {first_name}! Aquí estamos si nos necesitas.",
        "reminder": "Hola, {first_name}. Tu carrito sigue guardado: {url}\n"
                    "Para ayudarte a decidir, usa el código {code} (válido para una compra).",
        "thanks": "¡Gracias por tu compra, {first_name}! Ya estamos preparando tu pedido.",
        "testimonial": "«Llegó rápido y es tal cual las fotos. ¡Voy a volver a comprar!», nos "
                       "escribió una clienta esta semana. Tu carrito te espera, {first_name}: "
                       "{url}",
        "last_chance": "{first_name}, tu carrito está por vencer. Última oportunidad: con el "
                       "código {code} lo terminas aquí: {url}",
        "customer": "cliente",
    },
    "pt": {
        "interested": "Olá, {first_name}! Você deixou {cart} no carrinho. Ainda tem interesse?",
        "yes": "Sim, quero",
        "question": "Tenho uma pergunta",
        "no": "Não, obrigado",
        "some_products": "alguns produtos",
        "and_more": "{title} e mais {n} produto(s)",
        "link": "Ótimo! Seu carrinho está aqui: {url}\n"
                "Se tiver alguma dúvida, escreva para nós por aqui.",
        "link_code": "Ótimo! Seu carrinho está aqui: {url}\n"
                     "Lembre-se de usar seu cupom {code}. Se tiver dúvidas, escreva para nós.",
        "ask_question": "Claro! Qual é a sua pergunta?",
        "anything_else": "Posso ajudar com mais alguma coisa?",
        "done": "Não, obrigado",
        "close": "Perfeito! Quando quiser, seu carrinho está aqui: {url}",
        "handoff": "Obrigado pela pergunta. Uma pessoa da nossa equipe vai responder em "
                   "breve por aqui.",
        "why": "Entendido. Pode nos contar por quê? Isso nos ajuda a melhorar.",
        "price": "O preço",
        "shipping": "O frete",
        "just_looking": "Só estava olhando",
        "other": "Outro motivo",
        "thanks_reason": "Obrigado por nos contar, {first_name}! Estamos aqui se precisar.",
        "reminder": "Olá, {first_name}. Seu carrinho continua salvo: {url}\n"
                    "Para ajudar na decisão, use o cupom {code} (válido para uma compra).",
        "thanks": "Obrigado pela sua compra, {first_name}! Já estamos preparando seu pedido.",
        "testimonial": "«Chegou rápido e é igual às fotos. Vou comprar de novo!», nos escreveu "
                       "uma cliente esta semana. Seu carrinho está esperando, {first_name}: "
                       "{url}",
        "last_chance": "{first_name}, seu carrinho está quase expirando. Última chance: com o "
                       "cupom {code} você finaliza aqui: {url}",
        "customer": "cliente",
    },
    "en": {
        "interested": "Hi {first_name}! You left {cart} in your cart. Still interested?",
        "yes": "Yes, I want it",
        "question": "I have a question",
        "no": "No thanks",
        "some_products": "some products",
        "and_more": "{title} and {n} more item(s)",
        "link": "Great! Your cart is waiting here: {url}\n"
                "If you have any question, just write to us here.",
        "link_code": "Great! Your cart is waiting here: {url}\n"
                     "Remember to use your code {code}. Any question, just write to us.",
        "ask_question": "Sure! What is your question?",
        "anything_else": "Is there anything else I can help you with?",
        "done": "No, thanks",
        "close": "Perfect! Whenever you are ready, your cart is here: {url}",
        "handoff": "Thanks for your question. Someone from our team will answer you here "
                   "shortly.",
        "why": "Understood. Would you tell us why? It helps us improve.",
        "price": "The price",
        "shipping": "Shipping",
        "just_looking": "Just looking",
        "other": "Another reason",
        "thanks_reason": "Thanks for telling us, {first_name}! We are here if you need us.",
        "reminder": "Hi {first_name}. Your cart is still saved: {url}\n"
                    "To help you decide, use the code {code} (valid for one order).",
        "thanks": "Thank you for your order, {first_name}! We are already preparing it.",
        "testimonial": "\"Arrived fast and looks just like the photos. I'll be back!\" a "
                       "customer wrote to us this week. Your cart is waiting, {first_name}: "
                       "{url}",
        "last_chance": "{first_name}, your cart is about to expire. Last chance: the code "
                       "{code} still works here: {url}",
        "customer": "there",
    },
}

FLOW = Flow(
    "cart_recovery",
    triggers=("cart.abandoned",),
    reentry_after=days(7),
    marketing=True,
    templates={
        "interested": "cart_recovery_interested",
        "reminder": "cart_recovery_reminder",
        "testimonial": "cart_recovery_testimonial",
        "last_chance": "cart_recovery_last_chance",
        "thanks": "cart_recovery_thanks",
    },
    receives_messages=True,
    steps={
        "interested": "ask",
        "link": "send",
        "reminder": "send",
        "question": "ask",
        "faq": "record",
        "handoff_notice": "send",
        "handoff": "handoff",
        "close": "send",
        "why": "ask",
        "reason": "record",
        "thanks_reason": "send",
        "thanks": "send",
        "testimonial": "send",
        "last_chance": "send",
    },
    edges=(
        ("started", "interested", "cart.abandoned"),
        ("interested", "link", "yes"),
        ("interested", "question", "a question"),
        ("interested", "faq", "free text"),
        ("interested", "handoff_notice", "free text, unsure"),
        ("interested", "why", "no thanks"),
        ("interested", "reminder", "24 h"),
        ("interested", "thanks", "order.placed"),
        ("interested", "exit:expired", "5 days, any step"),
        ("reminder", "link", "yes"),
        ("reminder", "question", "a question"),
        ("reminder", "faq", "writes"),
        ("reminder", "why", "no"),
        ("reminder", "thanks", "order.placed"),
        ("reminder", "exit:no_reply", "48 h"),
        ("reminder", "testimonial", "48 h + 1 day, full"),
        ("link", "faq", "writes"),
        ("link", "thanks", "order.placed"),
        ("link", "exit:link_sent", "24 h"),
        ("link", "testimonial", "24 h + 1 day, full"),
        ("link", "last_chance", "24 h + 2 days, full, after the testimonial"),
        ("testimonial", "link", "yes"),
        ("testimonial", "question", "a question"),
        ("testimonial", "faq", "writes"),
        ("testimonial", "why", "no"),
        ("testimonial", "thanks", "order.placed"),
        ("testimonial", "last_chance", "2 days"),
        ("last_chance", "link", "yes"),
        ("last_chance", "question", "a question"),
        ("last_chance", "faq", "writes"),
        ("last_chance", "why", "no"),
        ("last_chance", "thanks", "order.placed"),
        ("last_chance", "exit:last_chance", "24 h"),
        ("question", "faq", "FAQ answer"),
        ("question", "question", "yes, more"),
        ("question", "handoff_notice", "unsure"),
        ("question", "close", "no, thanks"),
        ("question", "exit:chat_idle", "24 h"),
        ("faq", "question", "anything else?"),
        ("handoff_notice", "handoff"),
        ("handoff", "exit:handoff"),
        ("close", "exit:chat_done"),
        ("why", "reason", "a reason"),
        ("why", "exit:declined", "24 h"),
        ("reason", "thanks_reason"),
        ("thanks_reason", "exit:declined"),
        ("thanks", "exit:purchased"),
    ),
    description="Abandoned checkout: ask, answer questions, one reminder with a code (with "
                "CART_RECOVERY_FULL: a testimonial and a last chance).",
)

ASK_TIMEOUT = hours(24)
LISTEN_AFTER_LINK = hours(24)
LISTEN_AFTER_REMINDER = hours(48)
MAX_ANSWERS = 3
MAX_RUN = days(5)
# The fuller sequence (CART_RECOVERY_FULL): the waits before and after its two messages.
TESTIMONIAL_AFTER = days(1)
LAST_CHANCE_AFTER = days(2)
LISTEN_AFTER_LAST_CHANCE = hours(24)
FOLLOW_UPS = ("testimonial", "last_chance")  # in order; each sent at most once per run
# The waits a store may change (flow settings file, [flows.cart_recovery.timings]).
TIMINGS = {"ask_timeout": ASK_TIMEOUT, "listen_after_link": LISTEN_AFTER_LINK,
           "listen_after_reminder": LISTEN_AFTER_REMINDER, "max_run": MAX_RUN,
           "testimonial_after": TESTIMONIAL_AFTER, "last_chance_after": LAST_CHANCE_AFTER,
           "listen_after_last_chance": LISTEN_AFTER_LAST_CHANCE}

# What a typed reply means (normalised: lower case, no accents or punctuation).
INTERESTED = {
    "yes": (*YES, "si lo quiero", "sim quero", "yes i want it", "me interesa", "lo quiero"),
    "question": ("pregunta", "una pregunta", "tengo una pregunta", "tengo una duda", "duda",
                 "consulta", "pergunta", "tenho uma pergunta", "duvida", "question",
                 "i have a question"),
    "no": (*NO, "no me interesa", "nao tenho interesse", "not interested"),
}
OKAY = ("ok", "okay", "vale", "listo", "perfecto", "genial", "entendido", "beleza", "perfeito",
        "great", "got it")
DONE = {"done": (*NO, *OKAY, "nada", "nada mas", "eso es todo", "es todo", "gracias",
                 "muchas gracias", "obrigado", "obrigada", "so isso", "e isso", "nothing",
                 "nothing else", "thats all", "thanks", "thank you")}
MORE = {"more": tuple(word for word in YES if word not in OKAY)}
REASONS = {
    "price": ("precio", "caro", "cara", "costoso", "preco", "price", "expensive", "cost"),
    "shipping": ("envio", "flete", "entrega", "frete", "shipping", "delivery"),
    "just_looking": ("mirando", "viendo", "olhando", "looking", "browsing", "curiosidad"),
    "other": ("otro", "otro motivo", "outro", "outro motivo", "other", "another reason"),
}


def cart_summary(c: Any) -> str:
    """ "Zapatillas Runner" or "Zapatillas Runner y 2 producto(s) más" from the cart items."""
    items = [item for item in (c.m["items"] or []) if isinstance(item, dict)]
    titles = [str(item.get("title") or "") for item in items if item.get("title")]
    if not titles:
        return say(c, TEXTS, "some_products")
    if len(titles) == 1:
        return titles[0]
    return say(c, TEXTS, "and_more", title=titles[0], n=len(titles) - 1)


def remember_cart(c: Any) -> None:
    """Keep the checkout ids of this run (their order ends it) and the latest link."""
    checkouts = list(c.s.checkouts or [])
    checkout_id = str(c.m.checkout_id or "")
    if checkout_id and checkout_id not in checkouts:
        checkouts.append(checkout_id)
    c.s.checkouts = checkouts
    c.s.url = str(c.m.recovery_url or c.s.url or "")


def ask_interested(c: Any) -> None:
    c.s.phase = "asked"
    ask(c, say(c, TEXTS, "interested", cart=cart_summary(c)), name="interested",
        choices=[(key, say(c, TEXTS, key)) for key in INTERESTED], timeout=ask_timeout(c),
        template=(FLOW.templates["interested"], [template_name(c, TEXTS)]))


def send_link(c: Any) -> None:
    """Yes: the link (with the code, if the reminder gave one); listen a while for questions."""
    if c.s.code:
        send(c, say(c, TEXTS, "link_code", url=c.s.url, code=c.s.code), step="link")
    else:
        send(c, say(c, TEXTS, "link", url=c.s.url), step="link")
    listen(c, "link_sent", "listen_after_link")


def listen(c: Any, phase: str, wait: str) -> None:
    """Stay open for the customer's messages for the timing ``wait``, then end quietly."""
    c.s.phase = phase
    after(c, timing(c, wait, TIMINGS[wait]), {"type": "cart.quiet", "phase": phase}, key="quiet")


def full(c: Any) -> bool:
    """The store switched the fuller sequence on (``CART_RECOVERY_FULL``)."""
    return bool(config(c, "cart_recovery_full", False))


def max_run(c: Any) -> float:
    """How long a run may last: ``max_run``, plus the waits the fuller sequence adds.

    Without the addition the safety net (5 days) would end a silent run
    before its last chance (7 days in); a store that changes a wait moves
    the net with it.
    """
    extra = ("testimonial_after", "last_chance_after", "listen_after_last_chance")
    added = sum(timing(c, name, TIMINGS[name]) for name in extra) if full(c) else 0.0
    return timing(c, "max_run", MAX_RUN) + added


def follow_up(c: Any) -> bool:
    """With the fuller sequence, wait for its next message not sent yet; False: none left.

    Called where a run would end without a purchase (no reply to the
    reminder, silence after the link). The testimonial comes
    ``testimonial_after`` later, the last chance ``last_chance_after`` later.
    """
    if not full(c):
        return False
    upcoming = next((name for name in FOLLOW_UPS if name not in (c.s.followed or [])), None)
    if upcoming is None:
        return False
    wait_for(c, upcoming, f"before_{upcoming}")
    return True


def wait_for(c: Any, upcoming: str, phase: str) -> None:
    """Send ``upcoming`` after its wait, unless a reply or another step changes the phase."""
    c.s.phase = phase
    after(c, timing(c, f"{upcoming}_after", TIMINGS[f"{upcoming}_after"]),
          {"type": "cart.follow_up", "phase": phase, "next_step": upcoming}, key="quiet")


def sent_follow_up(c: Any, name: str) -> None:
    c.s.followed = [*(c.s.followed or []), name]


def send_testimonial(c: Any) -> None:
    """Another customer's words and the link; the last chance comes next."""
    sent_follow_up(c, "testimonial")
    send(c, say(c, TEXTS, "testimonial", url=c.s.url), step="testimonial",
         template=(FLOW.templates["testimonial"], [template_name(c, TEXTS), c.s.url]))
    wait_for(c, "last_chance", "testimonial")


def send_last_chance(c: Any) -> None:
    """The reminder's code again (or one issued now), the link; listen, then end."""
    sent_follow_up(c, "last_chance")
    code = str(c.s.code or "") or issue_code(c, "cart")
    c.s.code = code
    send(c, say(c, TEXTS, "last_chance", url=c.s.url, code=code), step="last_chance",
         template=(FLOW.templates["last_chance"], [template_name(c, TEXTS), code, c.s.url]))
    listen(c, "last_chance", "listen_after_last_chance")


def quiet_exit(phase: str) -> Literal["no_reply", "link_sent", "last_chance"]:
    """How a run ends after listening in ``phase`` without a reply."""
    if phase == "reminded":
        return "no_reply"
    return "last_chance" if phase == "last_chance" else "link_sent"


def ask_timeout(c: Any) -> float:
    """How long a question waits for its answer (the store may change it)."""
    return timing(c, "ask_timeout", ASK_TIMEOUT)


def invite_question(c: Any) -> None:
    c.s.phase = "chat"
    ask(c, say(c, TEXTS, "ask_question"), name="question", timeout=ask_timeout(c))


def ask_reason(c: Any) -> None:
    c.s.phase = "reason"
    ask(c, say(c, TEXTS, "why"), name="reason", step="why",
        choices=[(key, say(c, TEXTS, key)) for key in REASONS], timeout=ask_timeout(c))


def answer_question(c: Any) -> None:
    """Cart-assist: answer from the FAQ and offer more, or hand over to a person."""
    text = str(c.m.text or "").strip()
    answers = int(c.s.answers or 0)
    reply = match_faq(text, locale_of(c)) if answers < MAX_ANSWERS else None
    if reply is None:
        send(c, say(c, TEXTS, "handoff"), step="handoff_notice")  # before the agent holds it
        handoff(c, f"cart question: {text or '(no text)'}")
        exit_flow(c, "handoff")
        return
    c.s.answers = answers + 1
    step(c, "faq", best_topic(text) or "answered")
    c.s.phase = "chat"
    ask(c, f"{reply}\n\n{say(c, TEXTS, 'anything_else')}", name="question",
        choices=[("done", say(c, TEXTS, "done"))], timeout=ask_timeout(c))


def on_interest(c: Any) -> None:
    """The answer to step 1 (or to the reminder): yes, a question, or no."""
    choice = answer(c, INTERESTED)
    if choice == "yes":
        send_link(c)
    elif choice == "no":
        ask_reason(c)
    elif choice == "question":
        invite_question(c)
    else:
        answer_question(c)  # free text: most likely the question itself


def reason_of(c: Any) -> str:
    """The reason tapped, numbered or typed ("está muy caro" -> price); "other" when unclear."""
    chosen = answer(c, REASONS)
    if chosen is not None:
        return chosen
    said = set(words(c.m.text))
    return next((reason for reason, keys in REASONS.items() if said & set(keys)), "other")


with ruleset(FLOW.name):

    @when_all(m.type == "order.placed")
    def order_placed(c):
        checkout_id = str(c.m.checkout_id or "")
        if checkout_id and checkout_id in (c.s.checkouts or []):
            send(c, say(c, TEXTS, "thanks"), step="thanks")
            exit_flow(c, "purchased")
        # another checkout's order: this cart is still open

    @when_all(m.type == "cart.abandoned")
    def cart_abandoned(c):
        first = c.s.checkouts is None
        remember_cart(c)
        if first:
            after(c, max_run(c), {"type": "cart.expired"}, key="expire")
            ask_interested(c)

    @when_all((m.type == "timeout") & (m.question == "interested"))
    def no_reply(c):
        if c.s.phase != "asked":
            return
        code = issue_code(c, "cart")
        c.s.code = code
        send(c, say(c, TEXTS, "reminder", url=c.s.url, code=code), step="reminder",
             template=(FLOW.templates["reminder"], [template_name(c, TEXTS), code, c.s.url]))
        listen(c, "reminded", "listen_after_reminder")

    @when_all((m.type == "timeout") & (m.question == "question"))
    def chat_idle(c):
        if c.s.phase == "chat":
            exit_flow(c, "chat_idle")

    @when_all((m.type == "timeout") & (m.question == "reason"))
    def reason_not_given(c):
        if c.s.phase == "reason":
            exit_flow(c, "declined")

    @when_all(m.type == "cart.quiet")
    def quiet(c):
        if c.m.phase != c.s.phase:
            return
        if c.s.phase != "last_chance" and follow_up(c):
            return
        ending = quiet_exit(str(c.s.phase))
        exit_flow(c, ending)

    @when_all(m.type == "cart.follow_up")
    def follow_up_due(c):
        if c.m.phase != c.s.phase:
            return  # a reply or another step came first
        if c.m.next_step == "testimonial":
            send_testimonial(c)
        else:
            send_last_chance(c)

    @when_all(m.type == "cart.expired")
    def expired(c):
        exit_flow(c, "expired")

    @when_all((m.type == "message") & (m.question == "interested"))
    def interested_reply(c):
        on_interest(c)

    @when_all((m.type == "message") & (m.question == "question"))
    def question_reply(c):
        if answer(c, DONE) == "done":
            send(c, say(c, TEXTS, "close", url=c.s.url), step="close")
            exit_flow(c, "chat_done")
        elif answer(c, MORE) == "more":
            invite_question(c)
        else:
            answer_question(c)

    @when_all((m.type == "message") & (m.question == "reason"))
    def reason_reply(c):
        reason = reason_of(c)
        typed = {} if c.m.choice else {"text": str(c.m.text or "")}
        step(c, "reason", reason, **typed)
        set_attr(c, "cart_declined_reason", reason)
        send(c, say(c, TEXTS, "thanks_reason"), step="thanks_reason")
        exit_flow(c, "declined")

    @when_all(m.type == "message")
    def message_while_listening(c):
        # After the link or the reminder (no question pending), or a late tap on step 1.
        on_interest(c)
