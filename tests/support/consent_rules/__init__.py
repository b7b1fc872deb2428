"""Flows for the consent fuzz (``stress/consent.py``): the shipped consent flows and a promo.

``optout_confirmation`` and ``sunset`` are the shipped modules of ``rules/``
(re-exported, so their rulesets are the real ones); ``promo`` is a
marketing flow that tries to send on every channel at once whenever a
store reports ``product.viewed``.
"""
