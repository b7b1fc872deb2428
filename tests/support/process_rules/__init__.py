"""Flows for tests that run the server as a real subprocess (``FLOWS_PACKAGE``)."""
