"""The Brightpearl sandbox."""
