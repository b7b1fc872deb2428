"""Chasqui's conversation runtime: inbox, engine, state, waits, outbox."""
