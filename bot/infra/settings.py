"""Every setting of the service, read from the environment and validated at start-up.

The variables are those of the Configuration table in ``README.md``: the ones
the service's outside contract fixes, plus a few tunables with safe defaults.
A bad value fails start-up with a message naming the variable and the value
(``format_settings_error``); secrets are never printed.
"""

from __future__ import annotations

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
    quiet_hours: bool = True
    marketing_cap: int = Field(
        default=0, ge=0, description="marketing messages per customer per window; 0: no cap")
    marketing_cap_days: float = Field(default=7, gt=0)
    attribution_days: float = Field(
        default=5, gt=0, le=365,
        description="an order counts for a flow run placed within this many days after "
                    "one of its messages was delivered")
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

    @field_validator("business_hours")
    @classmethod
    def _check_business_hours(cls, value: str) -> str:
        business_hours.parse(value.strip())  # raises, naming the part it cannot read
        return value.strip()

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
            "cart_abandon_after": self.cart_abandon_after,
            "business_hours": self.business_hours,
            "store_timezone": self.store_timezone,
        }

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


def format_settings_error(error: ValidationError) -> str:
    """Name each bad variable and its value (secrets are masked)."""
    lines = ["invalid configuration:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]).upper() or "(settings)"
        value = item.get("input")
        shown = "***" if any(w in key for w in ("TOKEN", "SECRET")) else repr(value)
        lines.append(f"  {key}={shown}: {item['msg']}")
    return "\n".join(lines)
