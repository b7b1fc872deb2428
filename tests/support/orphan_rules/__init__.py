"""A flows package whose flow has no ruleset of its name."""
