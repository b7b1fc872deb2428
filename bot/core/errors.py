"""Errors shared by every edge (channels and store adapters)."""

from __future__ import annotations


class WebhookError(Exception):
    """A webhook that must be refused."""


class BadSignature(WebhookError):
    """The signature or secret token does not match: answer 401."""


class BadPayload(WebhookError):
    """The body is not what the route takes: answer 400 naming the problem."""


class WebhookOff(WebhookError):
    """The route's secret is not set, so nothing it receives can be believed: answer 503."""
