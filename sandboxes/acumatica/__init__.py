"""The Acumatica sandbox."""
