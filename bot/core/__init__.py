"""The core: pure decisions. Inputs, commands, flows, the rules engine, customers,
waits, composing messages. No I/O and no imports of the edges.
"""
