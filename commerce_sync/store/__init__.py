"""The application database: webhook events, id links, dead letters (sqlmodel + alembic)."""
