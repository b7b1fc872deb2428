"""A flows package whose rule waits for two events (refused when imported)."""
