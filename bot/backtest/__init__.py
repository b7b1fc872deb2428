"""Backtest: a store's recorded inputs replayed through its flows, before a change runs.

A store's developer changes a flow (a text, a wait, a branch) and asks what
it would have done to last month's customers. The inbox keeps every input
the service decided, and decisions are pure, so the answer is computed, not
guessed: the same inputs, at the times they arrived, decided by the
runtime's own :class:`~bot.core.decide.Decider` with the changed flows, and
counted as the service counts (``bot.core.stats``).

- ``history``: the inbox read in arrival order, a window at a time;
- ``scratch``: the replay's customer documents on disk (never all in memory);
- ``replay``: deciding and counting, and what the replay assumes;
- ``side``: one set of flow sources in a process of its own;
- ``report``: the table; ``__main__``: the command (``python -m bot.backtest``).

The version the service runs is read from ``flow_versions``
(``bot.runtime.flow_versions``): the source of every version a worker ran.
"""
