"""Thin activity functions: call systems/, read and write store/. Idempotent: retries are normal."""
