"""The X-Cart sandbox."""
