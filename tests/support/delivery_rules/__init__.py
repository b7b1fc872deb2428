"""Flows for the delivery tests (``tests/bot/test_delivery_rules.py``).

``offers`` sends a marketing message on each ``product.viewed``, in the way
the event's ``mode`` asks: on a fallback chain (WhatsApp, else SMS), on the
customer's first consented channel, or as a burst of five on WhatsApp.
"""
