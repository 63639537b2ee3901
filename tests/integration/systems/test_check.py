"""`commerce-sync check PAIR` against the sandboxes: every read reported, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from commerce_sync.commands.check import CheckTargets, Outcome, check_pair
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings

PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}

# The only requests that are not reads: signing in and out (Acumatica's OAuth token and
# cookie login/logout). Everything else the check sends must be a GET.
SIGN_IN_PATHS = ("/identity/connect/token", "/entity/auth/login", "/entity/auth/logout")


def _order(email: str) -> dict[str, Any]:
    return {
        "customer": {"email": email, "first_name": "Cora", "last_name": "Check"},
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Austin",
            "region": "TX",
            "postal_code": "78701",
            "country": "US",
        },
        "lines": [{"sku": "WIDGET-1", "quantity": 2}],
        "currency": "USD",
        "payment": {"method": "card", "reference": f"ch_{uuid.uuid4().hex[:12]}"},
    }


async def _writes(sandboxes: httpx.AsyncClient, system: str) -> list[str]:
    records = (await sandboxes.get(f"/{system}/_sandbox/requests")).json()["requests"]
    return [
        f"{record['method']} {record['path']}"
        for record in records
        if record["method"] != "GET" and not record["path"].endswith(SIGN_IN_PATHS)
    ]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_check_reads_an_order_a_product_and_a_customer_and_writes_nothing(
    settings: Settings, sandboxes: httpx.AsyncClient, pair: str
) -> None:
    store, erp = PAIRS[pair]
    email = f"cora-{uuid.uuid4().hex[:8]}@example.com"
    placed = await sandboxes.post(f"/{store}/_sandbox/orders", json=_order(email))
    placed.raise_for_status()
    for system in (store, erp):
        (await sandboxes.delete(f"/{system}/_sandbox/requests")).raise_for_status()

    report = await check_pair(settings, load_pairs()[pair], CheckTargets())

    seen = {(line.system, line.read): line for line in report.lines}
    assert not report.failed, report.lines
    assert seen[(store, "orders changed")].outcome is Outcome.OK
    assert seen[(store, "order")].outcome is Outcome.OK
    assert "1 lines" in seen[(store, "order")].detail
    assert seen[(store, "product")].outcome is Outcome.OK
    assert seen[(erp, "product")].outcome is Outcome.OK
    assert "WIDGET-1" in seen[(erp, "product")].detail
    # The order has not been synced: the ERP knows neither its customer nor the order.
    assert seen[(erp, "customer")].outcome is Outcome.NONE
    assert seen[(erp, "order")].outcome is Outcome.NONE
    # No e-mail (or other personal data) in the report.
    assert all(email not in line.detail for line in report.lines)
    for system in (store, erp):
        assert await _writes(sandboxes, system) == [], f"the check wrote to {system}"


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_check_reports_refused_credentials_as_a_failed_read(
    settings: Settings, sandboxes: httpx.AsyncClient, pair: str
) -> None:
    store, erp = PAIRS[pair]
    await sandboxes.post(f"/{store}/_sandbox/orders", json=_order("dora@example.com"))
    wrong = (
        {"brightpearl": settings.brightpearl.model_copy(update={"account_token": SecretStr("x")})}
        if erp == "brightpearl"
        else {"acumatica": settings.acumatica.model_copy(update={"password": SecretStr("x")})}
    )
    report = await check_pair(settings.model_copy(update=wrong), load_pairs()[pair], CheckTargets())

    assert report.failed
    erp_lines = [line for line in report.lines if line.system == erp]
    assert erp_lines and all(line.outcome is Outcome.FAILED for line in erp_lines)
    assert all("authentication refused" in line.detail for line in erp_lines)
    assert all(line.outcome is not Outcome.FAILED for line in report.lines if line.system == store)


def test_check_of_an_unknown_pair_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "commerce_sync.cli", "check", "no-such-pair"],
        env={**os.environ, "COMMERCE_SYNC_USE_SANDBOXES": "true"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "unknown pair no-such-pair (one of: kentico-brightpearl, xcart-acumatica)" in (
        result.stderr
    )


def test_check_on_the_command_line_prints_each_read_and_exits_0(
    sandbox_url: str, tmp_path: Path
) -> None:
    httpx.post(f"{sandbox_url}/kentico/_sandbox/orders", json=_order("ed@example.com"))
    env = {
        **os.environ,
        "COMMERCE_SYNC_USE_SANDBOXES": "true",
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path / ".data"),
        "COMMERCE_SYNC_KENTICO__BASE_URL": f"{sandbox_url}/kentico",
        "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL": f"{sandbox_url}/brightpearl",
    }
    result = subprocess.run(
        [sys.executable, "-m", "commerce_sync.cli", "check", "kentico-brightpearl"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("check kentico-brightpearl: ")
    assert lines[-1].endswith(" reads, 0 failed, nothing written")
    assert any(line.startswith("ok") and " order " in line for line in lines)
