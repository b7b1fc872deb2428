"""Flows for the message-fate and campaign tests (``tests/bot/test_message_fate.py``,
``tests/http/test_campaigns.py``).

``read_or_sms`` sends an offer on WhatsApp on each ``product.viewed`` and
watches it: read within 2 days ends the run; otherwise (or if it fails) the
offer goes again by SMS.
"""
