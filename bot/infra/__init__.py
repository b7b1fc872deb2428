"""Infrastructure: settings, clock, database client and the embedded server,
metrics. Knows nothing of flows or channels.
"""
