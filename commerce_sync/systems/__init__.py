"""Everything about each outside system: client (httpx), mapping, sandbox."""
