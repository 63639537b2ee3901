"""The Kentico sandbox."""
