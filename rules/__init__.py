"""The store's flows: one module each, a durable_rules ruleset plus a ``Flow``.

Every module here is loaded at start-up (``bot.flows.load_flows``); a module
that fails to load stops the service with its name and line.
"""
