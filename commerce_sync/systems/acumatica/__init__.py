"""Acumatica contract-based REST API (Default/24.200.001): the ERP of the xcart-acumatica pair."""
