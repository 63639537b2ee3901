"""commerce-sync: durable ERP <-> eCommerce integration on Temporal."""

__version__ = "0.1.0"
