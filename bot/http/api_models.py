"""What the HTTP API answers, as pydantic models, for the OpenAPI document only.

The handlers build their answers as plain dicts (``message_view``,
``conversation_view``, ``run_view``...); these models describe those dicts
so ``bot.http.openapi`` can derive JSON Schemas from them with pydantic's
own generator. Nothing validates an answer through them at run time:
``tests/http/test_openapi.py`` checks the running service against the
schemas instead, so a handler and its model cannot drift apart unnoticed.

Every answer model allows additional properties (the contract: "fields
beyond these may be added"). A field the handler always writes is required,
nullable where it may be ``null``; a field it sometimes leaves out has a
default. Request bodies the handlers check without a model (the clock, a
campaign) get one here too, to describe them; the handlers do not use them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.types import ConsentState, ConversationStatus

Moment = datetime | None  # an ISO 8601 UTC time (``...Z``), or null when unknown


class Answer(BaseModel):
    """An answer object: open to fields added later."""

    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------ common


class ErrorBody(Answer):
    """The service's one error shape; the message names the field or the problem."""

    error: str


class Health(Answer):
    """``GET /healthz``: ``ok`` when the database answers a ping within 1 s."""

    status: Literal["ok", "unavailable"]


class ClockAdvance(BaseModel):
    """Body of ``POST /admin/clock/advance`` (checked by the handler itself)."""

    model_config = ConfigDict(extra="allow")
    seconds: float = Field(ge=0, le=100 * 365 * 86400,
                           description="how far to move virtual time; 0 just reads it")


class ClockNow(Answer):
    """The virtual time after every wait that fell due has run."""

    now: datetime


# ---------------------------------------------------------------- webhooks


class EventAccepted(Answer):
    """202 of ``POST /events``: the event is stored and will be decided."""

    id: str


class Duplicate(Answer):
    """A delivery or event already stored: nothing changed."""

    duplicate: Literal[True]


class Ignored(Answer):
    """A webhook the service does not handle (or could not read), kept for inspection."""

    ignored: Literal[True]
    reason: str | None = Field(default=None, description="``unreadable`` when parsing failed")


class StoreAck(Answer):
    """200 of the Shopify and WooCommerce webhooks: the delivery's events are stored."""

    ok: Literal[True]
    events: int


class ProviderAck(Answer):
    """200 of a channel webhook: stored; decisions happen after the answer."""

    ok: Literal[True]


class TelegramCallbackAnswer(Answer):
    """200 of a Telegram webhook carrying a button tap: a Bot API call answering the tap."""

    method: Literal["answerCallbackQuery"]
    callback_query_id: str


class Unsubscribed(Answer):
    """RFC 8058 one-click unsubscribe: e-mail marketing is revoked."""

    unsubscribed: Literal[True]


# ------------------------------------------------------------ conversations


class StatusChange(Answer):
    """One step of an outbound message's ``status_history``."""

    status: str
    at: Moment


class Message(Answer):
    """``M``: one message of a conversation's timeline."""

    id: str
    direction: Literal["in", "out"]
    text: str | None
    at: Moment
    status: str | None = Field(description="outbound: queued, sending, sent, delivered, read, "
                                           "failed, undelivered or skipped")
    agent: str | None
    flow: str | None
    channel: str | None
    choices: list[Any] = Field(description="the options offered with the message")
    template: dict[str, Any] | None
    error: str | None = Field(description="why the message failed or was skipped")
    status_history: list[StatusChange]


class Conversation(Answer):
    """``C``: one customer on one channel."""

    id: str
    customer_id: str | None
    channel: str
    status: ConversationStatus
    agent: str | None
    handoff_reason: str | None
    last_message: Message | None
    updated_at: Moment


class AgentAction(Answer):
    """Who took over, assigned, released, closed or wrote, and when."""

    action: str
    by: str | None
    agent: str | None
    at: Moment


class ConversationDetail(Conversation):
    """``C`` with its timeline (oldest first) and the agents' actions (newest last)."""

    messages: list[Message]
    actions: list[AgentAction]


class ConversationList(Answer):
    """Conversations, newest activity first."""

    conversations: list[Conversation]


class AgentAccount(Answer):
    """An agent's account as the API shows it (never the password's hash)."""

    email: str
    name: str
    role: Literal["agent", "admin"]
    lang: str
    created_at: Moment


# ---------------------------------------------------------------- customers


class CurrentConsent(Answer):
    """A channel's consent now, and where it came from."""

    state: ConsentState
    source: str
    at: Moment


class LedgerEntry(Answer):
    """One statement of consent, as recorded (the ledger only grows)."""

    id: str | None = Field(default=None, description="cl<n>; old entries are named by place")
    channel: str
    state: ConsentState
    source: str
    at: Moment
    recorded_at: Moment = None
    evidence: dict[str, Any] | None = None
    superseded: bool | None = None


class ActiveFlow(Answer):
    """A flow run in progress for the customer."""

    flow: str
    step: str | None
    started_at: Moment


class Customer(Answer):
    """A customer's profile, consents per channel and active flows."""

    id: str = Field(description="the store's customer id when there is one")
    internal_id: str
    phone: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    locale: str | None
    timezone: str | None
    birthday: str | None
    tags: list[str]
    attrs: dict[str, Any]
    consents: dict[str, CurrentConsent]
    consent_ledger: list[LedgerEntry]
    active_flows: list[ActiveFlow]
    conversations: dict[str, str | None] = Field(description="channel: conversation status")
    telegram_link: str | None = Field(
        default=None, description="the Telegram /start deep link that links a chat to this "
                                  "customer (when Telegram is on)")


class MarketingSend(Answer):
    """A marketing message sent, and the ledger entry that allowed it."""

    message_id: str
    sent_at: Moment
    status: str | None
    flow: str | None
    step: str | None
    consent_entry: str | None
    derived: bool | None = Field(default=None, description="the entry was derived for a "
                                                           "message sent before sends recorded it")


class ChannelConsent(Answer):
    """One channel's proof: current state, the entry behind it, its ledger and sends."""

    state: ConsentState | None
    source: str | None
    at: Moment
    entry: str | None
    ledger: list[LedgerEntry]
    marketing_sends: list[MarketingSend]


class ConsentProof(Answer):
    """A customer's consent, per channel, with its evidence."""

    customer_id: str
    channels: dict[str, ChannelConsent]
    truncated: bool = Field(description="more marketing sends exist than are listed (1000)")


# -------------------------------------------------------------------- flows


class FlowSummary(Answer):
    name: str
    description: str
    triggers: list[str]
    marketing: bool
    version: str


class FlowList(Answer):
    flows: list[FlowSummary]


class RunCounts(Answer):
    started: int
    active: int
    ended: dict[str, int] = Field(description="outcome: runs")


class StepFigures(Answer):
    step: str
    reached: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    skipped: dict[str, int] = Field(description="reason: messages")


class Conversions(Answer):
    orders: int
    revenue: dict[str, str] = Field(description="currency: decimal string")


class Transition(Answer):
    from_: str = Field(alias="from")
    to: str
    count: int


class Figures(Answer):
    """A period's figures of a flow, or of one variant of it."""

    runs: RunCounts
    steps: list[StepFigures]
    conversions: Conversions
    transitions: list[Transition] | None = Field(
        default=None, description="every move of the runs; left out when a day of the "
                                  "period was counted before transitions were")


class FlowStats(Figures):
    """The period's figures (both days included, UTC)."""

    flow: str
    from_: date = Field(alias="from")
    to: date
    variants: dict[str, Figures] | None = Field(default=None,
                                                description="per variant, when the flow splits")


class FlowRun(Answer):
    """Where one run stopped."""

    id: str
    customer_id: str | None
    started_at: Moment
    ended_at: Moment
    last_step: str | None
    outcome: str | None


class FlowRuns(Answer):
    """The runs that ended in the period, oldest first, a page at a time."""

    runs: list[FlowRun]
    next: str | None = Field(description="cursor of the following page; null on the last")


class FlowVersion(Answer):
    """One version of a flow some worker ran (``flow_versions``)."""

    version: str
    first_seen: Moment = Field(description="when a worker first started with it")
    last_seen: Moment = Field(description="when a worker last started with it")
    running: bool = Field(description="the version this worker runs")
    source: bool = Field(description="whether its source was kept (a flow declared outside "
                                     "a module has none)")


class FlowVersions(Answer):
    """Every recorded version of a flow, the one started most recently first."""

    flow: str
    versions: list[FlowVersion]


# ---------------------------------------------------------------- campaigns


class TemplateRef(BaseModel):
    name: str
    params: list[str] = []


class CampaignBody(BaseModel):
    """Body of ``POST /api/campaigns`` (checked by ``bot.core.campaigns.parse_campaign``)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200,
                             description="required unless dry_run")
    segment: dict[str, Any] = Field(
        description='one key: all/any (a list), not, everyone (true), tagged, '
                    'bought_category, bought_product, consented, orders_at_least, '
                    'no_order_since, spent_over; e.g. {"all": [{"tagged": "vip"}, '
                    '{"spent_over": ["100", "ARS"]}]}')
    text: str | None = Field(default=None, max_length=4096, description="or texts")
    texts: dict[str, str] | None = Field(default=None, description="per locale: es, pt, en")
    template: str | TemplateRef | None = None
    channels: list[str] | None = Field(default=None,
                                       description="the channel chain; configured ones only")
    at: datetime | None = Field(default=None, description="when, with its UTC offset; "
                                                          "required unless dry_run")
    dry_run: bool = Field(default=False, description="only count the segment now")


class CampaignCreated(Answer):
    id: str
    status: Literal["scheduled"]
    at: datetime


class CampaignCount(Answer):
    """A dry run: the customers in the segment now; nothing is written."""

    matching: int


class CampaignCounts(Answer):
    matched: int
    queued: int
    sent: int
    failed: int
    skipped: dict[str, int] = Field(description="reason: messages")


class Campaign(Answer):
    id: str
    name: str
    status: Literal["scheduled", "expanding", "expanded", "failed"]
    at: Moment
    segment: dict[str, Any]
    texts: dict[str, str]
    template: dict[str, Any] | None
    channels: list[str]
    created_at: Moment
    expanded_at: Moment
    counts: CampaignCounts
    error: str | None = Field(default=None, description="why expanding it failed")


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody, Health, ClockNow, EventAccepted, Duplicate, Ignored, StoreAck, ProviderAck,
    TelegramCallbackAnswer, Unsubscribed, Message, Conversation, ConversationDetail,
    ConversationList, AgentAccount, Customer, ConsentProof, FlowList, FlowStats, FlowRuns,
    CampaignCreated, CampaignCount, Campaign,
)
