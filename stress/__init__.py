"""Stress suite (issue 17): crash trials, fault injection, fuzzing, consent
fuzzing, sustained load and security checks. Run with ``make stress`` or
``python -m stress [--short]`` from the repository root; not shipped in the
wheel."""
