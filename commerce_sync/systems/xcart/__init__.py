"""X-Cart 5 (XC\\RESTAPI module): the store of the xcart-acumatica pair."""
