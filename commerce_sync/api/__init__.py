"""The thin FastAPI service: webhooks in, workflow starts and signals out, status, approvals."""
