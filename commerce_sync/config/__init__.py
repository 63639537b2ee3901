"""Settings (pydantic-settings) and the integration pairs (pairs.toml)."""
