"""Operators' tools: alerts, metrics, traces."""
