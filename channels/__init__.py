"""Messaging providers: one module per provider behind the core's ``bot.core.channel.Channel``."""
