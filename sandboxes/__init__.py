"""Faithful local simulators of the four outside systems, and the embedded default: for `make run`, `make test` and a merchant's staging; never imported by shipped code."""
