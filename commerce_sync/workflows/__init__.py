"""One module per business process. Deterministic code only: no I/O, no httpx, sqlmodel or settings."""
