"""Two tiny flows for the flow settings file's on/off switches (``FLOWS_PACKAGE``).

``t_standard`` runs by default; ``t_optional`` is a library flow, off until
named (``Flow.on_by_default=False``).
"""
