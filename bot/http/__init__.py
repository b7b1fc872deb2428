"""The HTTP room: typed app keys, shared middlewares, the agent API (and the
console). Handlers store inputs and read documents; they never decide.
"""
