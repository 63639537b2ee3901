"""Canonical models and pure business rules. Imports nothing else of the project, does no I/O."""
