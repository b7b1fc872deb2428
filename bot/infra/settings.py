"""Every setting of the service, read from the environment and validated at start-up.

The variables are those of the Configuration table in ``README.md``: the ones
the service's outside contract fixes, plus a few tunables with safe defaults.
A bad value fails start-up with a message naming the variable and the value
(``format_settings_error``); secrets are never printed.
"""

from __future__ import annotations

from decimal import Decimal
from email.utils import parseaddr
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core import business_hours


def known_timezone(name: str) -> str:
    """``name`` if it is an IANA timezone this machine knows ("America/Sao_Paulo")."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone (e.g. America/Sao_Paulo)") from None
    return name


def months_list(value: str) -> list[int]:
    """``REACTIVATION_MONTHS`` ("3,6,12") as three increasing whole months.

    Three, because the reactivation flow has three messages (check-in,
    incentive, last offer), one at each.
    """
    try:
        months = [int(part) for part in value.split(",")]
    except ValueError:
        raise ValueError(f"{value!r} must be three whole months, e.g. 3,6,12") from None
    if len(months) != 3 or months[0] < 1 or not months[0] < months[1] < months[2]:
        raise ValueError(f"{value!r} must be three increasing whole months, e.g. 3,6,12")
    return months


class Settings(BaseSettings):
    """The service's configuration (environment variables, case-insensitive)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    mongodb_uri: str | None = None
    mongodb_db: str = "chasqui"
    mongodb_write_concern: str = Field(
        default="majority", description="w of the journaled writes (j: true): majority or a number")
    data_dir: str = "./data"
    admin_token: SecretStr | None = None
    clock: Literal["system", "virtual"] = "system"
    log_level: str = "INFO"
    flows_package: str = "rules"
    flows: str | None = Field(
        default=None, description="comma-separated flow modules; all when unset")
    flows_config: str | None = Field(
        default=None, description="path of the flow settings file (TOML): flows on/off, "
                                  "texts, timings, send windows; checked at start-up")
    quiet_hours: bool = True
    marketing_cap: int = Field(
        default=0, ge=0, description="marketing messages per customer per window; 0: no cap")
    marketing_cap_days: float = Field(default=7, gt=0)
    attribution_days: float = Field(
        default=5, gt=0, le=365,
        description="an order counts for a flow run placed within this many days after "
                    "one of its messages was delivered")
    flow_version_days: float = Field(
        default=30, ge=0,
        description="a run goes on with the flow version it started on when a worker ran "
                    "that version within this many days; 0: runs take the current one")
    default_timezone: str = "America/Argentina/Buenos_Aires"
    business_hours: str = Field(
        default="Mon-Fri 09:00-18:00",
        description="when people answer, in STORE_TIMEZONE: 'Mon-Fri 09:00-18:00; Sat 10:00-13:00'")
    store_timezone: str | None = Field(
        default=None,
        description="the store's timezone (business hours); DEFAULT_TIMEZONE when unset")

    whatsapp_phone_id: str | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "21.0"
    whatsapp_rate: float = Field(
        default=80.0, ge=0, description="messages/s per sender; 0 = unpaced")

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    sms_rate: float = Field(default=1.0, ge=0, description="segments/s per sender (long code: 1)")
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    sms_stop_confirmation: bool = True

    telegram_bot_token: SecretStr | None = None
    telegram_secret_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_username: str = "chasqui_bot"
    telegram_rate: float = Field(default=30.0, ge=0)

    # E-mail (channels/email.py): off until SMTP_URL and EMAIL_FROM are set.
    smtp_url: SecretStr | None = Field(
        default=None, description="smtp://user:password@host:port (smtps:// for TLS from the "
                                  "start); STARTTLS is used whenever the relay offers it")
    email_from: str | None = Field(default=None, description='the From: "Store <shop@example.com>"')
    email_inbound_secret: SecretStr | None = Field(
        default=None, description="signs POST /webhooks/email (like /events); unset: replies off")
    email_rate: float = Field(default=10.0, ge=0, description="e-mails/s; 0 = unpaced")

    shopify_webhook_secret: SecretStr | None = None
    woocommerce_webhook_secret: SecretStr | None = None
    store_events_secret: SecretStr | None = None
    default_country: str = Field(default="AR", min_length=2, max_length=2)

    cart_abandon_after: int = Field(default=3600, ge=0)
    inactive_after_days: int = Field(default=90, ge=1)
    survey_after_days: int = Field(default=3, ge=0)
    sunset_after_days: int = Field(default=180, ge=1)
    agent_idle_release: int = Field(default=4 * 3600, ge=60, description="seconds")
    review_url: str = "https://example.com/reviews"
    discount_pattern: str = "VUELVE-{code}"
    # Double opt-in (rules/double_opt_in.py): where a store's opt-in waits for the
    # customer's confirmation, and when the flow reminds and gives up.
    double_opt_in: str = Field(
        default="", description="channels where a store's opt-in waits for the customer's "
                                "confirmation, comma-separated (whatsapp,sms); empty: off")
    double_opt_in_reminder_days: float = Field(
        default=2, gt=0, description="double opt-in: first reminder, days after the question")
    double_opt_in_last_reminder_days: float = Field(
        default=7, gt=0, description="double opt-in: last reminder, days after the question")
    double_opt_in_expire_days: float = Field(
        default=2, gt=0, description="double opt-in: days after the last reminder before an "
                                     "unanswered opt-in is closed as revoked")
    # The library flows of rules/welcome.py, second_purchase.py, browse_abandonment.py,
    # best_customer.py (days and hours may be fractions).
    welcome_education_days: float = Field(default=1, ge=0, description="welcome: the tip")
    welcome_reminder_days: float = Field(default=2, ge=0, description="welcome: 1st code reminder")
    welcome_testimonial_days: float = Field(default=4, ge=0, description="welcome: testimonial")
    welcome_last_reminder_days: float = Field(
        default=7, ge=0, description="welcome: last code reminder, days after sign-up")
    second_purchase_after_days: float = Field(
        default=30, gt=0, description="second purchase: days after a first order")
    browse_window_hours: float = Field(
        default=24, gt=0, description="browse abandonment: views counted this long, no cart")
    browse_reentry_days: float = Field(
        default=7, ge=0, description="browse abandonment: at most one message per this many days")
    best_customer_threshold: Decimal = Field(
        default=Decimal("100000"), gt=0, description="best customer: spent more than this")
    best_customer_currency: str = Field(
        default="ARS", pattern=r"^[A-Za-z]{3}$", description="best customer: ISO 4217 code")
    best_customer_delay_days: float = Field(
        default=14, ge=0, description="best customer: days without an order before the reward")
    # The library flows of rules/post_purchase.py, rules/reactivation.py, rules/back_in_stock.py.
    review_after_days: int = Field(
        default=30, ge=1, description="post-purchase: days after the last order of the run "
                                      "before the review requests and the cross-sell")
    related_products: dict[str, list[str]] = Field(
        default_factory=dict,
        description='post-purchase cross-sell, JSON: {"category": ["product id or name", ...]}')
    reactivation_months: str = Field(
        default="3,6,12",
        description="reactivation: months (30 days) without an order for the check-in, the "
                    "incentive and the last offer")
    reactivation_sunset_days: int = Field(
        default=15, ge=1, description="reactivation: days from the last offer to the sunset")
    back_in_stock_reminder_days: float = Field(default=2, gt=0)
    back_in_stock_last_chance_days: float = Field(default=5, gt=0)
    # The sunset's last chance and goodbye (rules/sunset.py): off, the flow is as it was.
    sunset_last_chance: bool = Field(
        default=False, description="sunset: before pausing marketing for want of an answer, "
                                   "a last-chance question and then a goodbye notice")
    # Cart recovery's fuller sequence (rules/cart_recovery.py): off, the flow is as it was.
    cart_recovery_full: bool = Field(
        default=False, description="cart recovery: after the reminder or the link, a "
                                   "testimonial and a last chance (LinkPort's five messages)")
    # The birthday series (rules/birthday_series.py, off by default; it replaces birthday).
    birthday_notice_days: int = Field(
        default=7, ge=1, le=90, description="birthday series: days before the birthday for the "
                                           "notice that a gift is coming (10:00 local)")
    birthday_reminder_days: float = Field(
        default=3, gt=0, description="birthday series: days after the greeting for the code "
                                     "reminder when nothing was bought")

    @field_validator("mongodb_uri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        if not urlsplit(value).netloc.rsplit("@", 1)[-1]:
            raise ValueError("has no host")
        return value

    @field_validator("mongodb_write_concern")
    @classmethod
    def _check_write_concern(cls, value: str) -> str:
        value = value.strip()
        if value == "majority" or (value.isdigit() and 1 <= int(value) <= 50):
            return value
        raise ValueError("must be majority or a number of nodes from 1 to 50")

    @field_validator("reactivation_months")
    @classmethod
    def _check_reactivation_months(cls, value: str) -> str:
        return ",".join(str(n) for n in months_list(value))

    @field_validator("double_opt_in")
    @classmethod
    def _check_double_opt_in(cls, value: str) -> str:
        """Channel names, lower case and comma-separated; which channels exist is the registry's."""
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        bad = [name for name in names if not name.isascii() or not name.isalpha()]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a channel name (e.g. whatsapp,sms)")
        return ",".join(dict.fromkeys(names))

    @model_validator(mode="after")
    def _check_double_opt_in_timings(self) -> Settings:
        if self.double_opt_in_last_reminder_days <= self.double_opt_in_reminder_days:
            raise ValueError("DOUBLE_OPT_IN_LAST_REMINDER_DAYS must be later than "
                             "DOUBLE_OPT_IN_REMINDER_DAYS")
        return self

    @field_validator("business_hours")
    @classmethod
    def _check_business_hours(cls, value: str) -> str:
        business_hours.parse(value.strip())  # raises, naming the part it cannot read
        return value.strip()

    @field_validator("flows_config")
    @classmethod
    def _check_flows_config(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("store_timezone")
    @classmethod
    def _check_store_timezone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return known_timezone(value.strip())

    @field_validator("public_url", "whatsapp_api_url", "twilio_api_url", "telegram_api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            # Never echo the value: it holds the relay's password.
            raise ValueError("must be smtp://user:password@host:port or smtps://...")
        try:
            parts.port  # noqa: B018 (a bad port raises here, named)
        except ValueError:
            raise ValueError("has a port that is not a number") from None
        return value

    @field_validator("email_from")
    @classmethod
    def _check_email_from(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if "@" not in parseaddr(value)[1]:
            raise ValueError('must be an address, e.g. "Store <shop@example.com>"')
        return value.strip()

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        if self.store_timezone is None:
            try:
                self.store_timezone = known_timezone(self.default_timezone)
            except ValueError as exc:
                raise ValueError(f"STORE_TIMEZONE is unset and DEFAULT_TIMEZONE {exc}") from None
        return self

    def flow_settings(self) -> dict[str, object]:
        """The settings flows may read through ``bot.core.commands.config``."""
        return {
            "survey_after_days": self.survey_after_days,
            "sunset_after_days": self.sunset_after_days,
            "review_url": self.review_url,
            "review_after_days": self.review_after_days,
            "related_products": {k: list(v) for k, v in self.related_products.items()},
            "inactive_after_days": self.inactive_after_days,
            "reactivation_months": months_list(self.reactivation_months),
            "reactivation_sunset_days": self.reactivation_sunset_days,
            "back_in_stock_reminder_days": self.back_in_stock_reminder_days,
            "back_in_stock_last_chance_days": self.back_in_stock_last_chance_days,
            "sunset_last_chance": self.sunset_last_chance,
            "cart_recovery_full": self.cart_recovery_full,
            "cart_abandon_after": self.cart_abandon_after,
            "business_hours": self.business_hours,
            "store_timezone": self.store_timezone,
            # The router reads "double_opt_in" too (a store's opt-in there is recorded pending).
            "double_opt_in": self.double_opt_in_channels,
            "double_opt_in_reminder_days": self.double_opt_in_reminder_days,
            "double_opt_in_last_reminder_days": self.double_opt_in_last_reminder_days,
            "double_opt_in_expire_days": self.double_opt_in_expire_days,
            "welcome_education_days": self.welcome_education_days,
            "welcome_reminder_days": self.welcome_reminder_days,
            "welcome_testimonial_days": self.welcome_testimonial_days,
            "welcome_last_reminder_days": self.welcome_last_reminder_days,
            "second_purchase_after_days": self.second_purchase_after_days,
            "browse_window_hours": self.browse_window_hours,
            "browse_reentry_days": self.browse_reentry_days,
            "best_customer_threshold": str(self.best_customer_threshold),
            "best_customer_currency": self.best_customer_currency.upper(),
            "best_customer_delay_days": self.best_customer_delay_days,
            "birthday_notice_days": self.birthday_notice_days,
            "birthday_reminder_days": self.birthday_reminder_days,
        }

    @property
    def double_opt_in_channels(self) -> list[str]:
        """``DOUBLE_OPT_IN`` as a list of channel names (empty: double opt-in is off)."""
        return [name for name in self.double_opt_in.split(",") if name]

    @property
    def base_url(self) -> str:
        """``PUBLIC_URL`` without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def enabled_summary(self) -> str:
        """One log line of what is switched on; names only, never secrets."""
        channels = [
            name
            for name, needed in (
                ("whatsapp", (self.whatsapp_phone_id, self.whatsapp_token,
                              self.whatsapp_app_secret, self.whatsapp_verify_token)),
                ("sms", (self.twilio_account_sid, self.twilio_auth_token, self.twilio_from)),
                ("telegram", (self.telegram_bot_token, self.telegram_secret_token)),
                ("email", (self.smtp_url, self.email_from)),
            )
            if all(needed)
        ]
        stores = [
            name
            for name, secret in (
                ("shopify", self.shopify_webhook_secret),
                ("woocommerce", self.woocommerce_webhook_secret),
                ("events", self.store_events_secret),
            )
            if secret
        ]
        database = "external MongoDB" if self.mongodb_uri else f"embedded ({self.data_dir}/db)"
        return (
            f"channels: {', '.join(channels) or 'none'}; stores: {', '.join(stores) or 'none'}; "
            f"database: {database}; clock: {self.clock}"
        )


def secret(value: SecretStr | None) -> str:
    """The plain text of an optional secret ('' when unset)."""
    return value.get_secret_value() if value is not None else ""


SECRET_WORDS = ("TOKEN", "SECRET", "SMTP_URL")  # variables never echoed (SMTP_URL has a password)


def format_settings_error(error: ValidationError) -> str:
    """Name each bad variable and its value (secrets are masked)."""
    lines = ["invalid configuration:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]).upper() or "(settings)"
        value = item.get("input")
        shown = "***" if any(w in key for w in SECRET_WORDS) else repr(value)
        lines.append(f"  {key}={shown}: {item['msg']}")
    return "\n".join(lines)
