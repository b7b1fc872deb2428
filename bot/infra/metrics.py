"""Prometheus metrics: HTTP requests by route, and the service's own counters.

Each application gets its own registry, so tests can build many apps in one
process without colliding in the global default registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """Every metric the service exports, on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chasqui_http_requests", "HTTP requests answered",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "chasqui_http_request_seconds", "HTTP request latency",
            ["route", "method"], registry=self.registry,
        )
        self.inputs = Counter(
            "chasqui_inputs", "inputs accepted into the inbox", ["kind", "source"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "chasqui_duplicate_inputs", "inputs refused as duplicates", ["source"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "chasqui_decisions", "inputs decided by the engine", ["outcome"],
            registry=self.registry,
        )
        self.intake_yields = Counter(
            "chasqui_intake_yields", "decision chunks held back while storing inputs was slow",
            registry=self.registry,
        )
        self.waits_fired = Counter(
            "chasqui_waits_fired", "scheduled waits fired", registry=self.registry
        )
        self.sends = Counter(
            "chasqui_messages", "outbound messages by final outcome", ["channel", "outcome"],
            registry=self.registry,
        )
        self.flow_steps = Counter(
            "chasqui_flow_steps", "flow steps recorded", ["flow", "step"],
            registry=self.registry,
        )
