"""Brightpearl public API: the ERP of the kentico-brightpearl pair."""
