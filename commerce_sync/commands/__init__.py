"""What the CLI and the API ask for beyond one route: resync, inventory control, dead-letter replay, run listing."""
