"""Benchmarks (``make bench``): figures of the runtime and the outbox, not timed tests."""
