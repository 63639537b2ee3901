"""Kentico (Xperience 12/13 REST service): the store of the kentico-brightpearl pair."""
