"""Messaging providers: one module per provider behind ``channels.base.Channel``."""
