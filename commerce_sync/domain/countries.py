"""ISO-3166 conversions (Brightpearl speaks alpha-3, everything else alpha-2)."""

import pycountry


def alpha3(alpha2: str) -> str:
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    if country is None:
        raise ValueError(f"unknown ISO-3166 alpha-2 country code {alpha2!r}")
    return str(country.alpha_3)


def alpha2(code: str) -> str:
    """Accepts alpha-2 or alpha-3, returns alpha-2."""
    code = code.strip().upper()
    country = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    if country is None and len(code) == 3:
        country = pycountry.countries.get(alpha_3=code)
    if country is None:
        raise ValueError(f"unknown ISO-3166 country code {code!r}")
    return str(country.alpha_2)
