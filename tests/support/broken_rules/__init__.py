"""A flows package with a module that fails to import (start-up must name it)."""
