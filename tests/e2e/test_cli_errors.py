"""Bad configuration and busy ports end the command with one readable line and exit 1."""

import os
import subprocess
import sys
from pathlib import Path

from sandboxes.server import bind_socket


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commerce_sync.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invalid_pairs_file_stops_start_up_naming_file_key_and_reason(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.toml"
    pairs.write_text(
        '[pairs.kb]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n'
        "[pairs.kb.inventory]\nsafety_stock = -4\n"
    )
    result = run_cli("up", env={"COMMERCE_SYNC_PAIRS_FILE": str(pairs)}, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(pairs) in lines[0]
    assert "pairs.kb.inventory.safety_stock" in lines[0]
    assert "greater than or equal to 0" in lines[0]
    assert not (tmp_path / ".data").exists()  # nothing was started


def test_invalid_setting_is_one_line(tmp_path: Path) -> None:
    result = run_cli("api", env={"COMMERCE_SYNC_API_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "api_port" in result.stderr


def test_busy_port_is_named(tmp_path: Path) -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        result = run_cli("sandbox", "--port", str(port), env={}, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().count("\n") == 0
        assert f"port {port} (sandboxes) is already in use" in result.stderr
        result = run_cli("api", "--port", str(port), env={}, cwd=tmp_path)
        assert result.returncode == 1
        assert f"port {port} (API) is already in use" in result.stderr
    finally:
        sock.close()


def test_outside_up_a_connector_left_on_the_sandbox_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    """A deployment that forgot a setting must not quietly talk to 127.0.0.1:8100."""
    pairs = tmp_path / "pairs.toml"
    pairs.write_text('[pairs.kb]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n')
    env = {
        "COMMERCE_SYNC_USE_SANDBOXES": "false",
        "COMMERCE_SYNC_PAIRS_FILE": str(pairs),
        "COMMERCE_SYNC_KENTICO__BASE_URL": "https://shop.example.com",
        "COMMERCE_SYNC_KENTICO__PASSWORD": "kentico-password",
        "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL": "https://use1.brightpearlconnect.com",
    }
    for command in ("worker", "api"):
        result = run_cli(command, env=env, cwd=tmp_path)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "COMMERCE_SYNC_BRIGHTPEARL__ACCOUNT_TOKEN" in lines[0]
        assert "KENTICO" not in lines[0] and "XCART" not in lines[0]
        assert "sandbox-brightpearl-token" not in result.stderr

    # Configured, the same command goes past the settings (and stops at Temporal, which
    # is not running here).
    env["COMMERCE_SYNC_BRIGHTPEARL__ACCOUNT_TOKEN"] = "brightpearl-token"
    env["COMMERCE_SYNC_TEMPORAL_ADDRESS"] = "127.0.0.1:1"
    result = run_cli("runs", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr
