from pathlib import Path

import pytest

from commerce_sync.config.settings import Settings


def test_defaults_run_embedded_on_sqlite_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.embedded_temporal
    assert settings.resolved_temporal_address == "127.0.0.1:7233"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.data' / 'commerce-sync.db'}"
    assert settings.brightpearl.rate_per_second == pytest.approx(200 / 60)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/cs")
    monkeypatch.setenv("COMMERCE_SYNC_TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("COMMERCE_SYNC_BRIGHTPEARL__ACCOUNT_CODE", "acme")
    monkeypatch.setenv("COMMERCE_SYNC_API_KEYS", '{"k1": ["read"]}')
    settings = Settings(_env_file=None)
    assert settings.resolved_database_url == "postgresql://u@db/cs"
    assert not settings.embedded_temporal
    assert settings.brightpearl.account_code == "acme"
    assert settings.api_keys == {"k1": ["read"]}


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("COMMERCE_SYNC_API_PORT=9123\n")
    assert Settings().api_port == 9123


def test_secrets_do_not_show_in_repr() -> None:
    text = repr(Settings(_env_file=None))
    assert "sandbox-brightpearl-token" not in text
    assert "sandbox-acumatica-password" not in text


REAL = {
    "kentico": {"base_url": "https://shop.example.com", "password": "k-pass"},
    "brightpearl": {"base_url": "https://use1.brightpearlconnect.com", "account_token": "t"},
}


def test_sandbox_leftovers_names_each_sandbox_url_and_credential_of_the_systems_in_use() -> None:
    settings = Settings(_env_file=None)
    assert settings.sandbox_leftovers(["kentico", "brightpearl"]) == [
        "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL",
        "COMMERCE_SYNC_BRIGHTPEARL__ACCOUNT_TOKEN",
        "COMMERCE_SYNC_KENTICO__BASE_URL",
        "COMMERCE_SYNC_KENTICO__PASSWORD",
    ]
    assert settings.sandbox_leftovers([]) == []


def test_sandbox_leftovers_is_empty_once_the_systems_in_use_are_configured() -> None:
    settings = Settings.model_validate({**REAL, "_env_file": None})
    assert settings.sandbox_leftovers(["kentico", "brightpearl"]) == []
    # X-Cart is not configured, and it is named only when a pair uses it.
    assert settings.sandbox_leftovers(["xcart"]) == [
        "COMMERCE_SYNC_XCART__BASE_URL",
        "COMMERCE_SYNC_XCART__API_KEY",
        "COMMERCE_SYNC_XCART__READ_KEY",
    ]


def test_a_url_on_the_sandbox_server_is_a_leftover_wherever_that_server_listens() -> None:
    moved = Settings.model_validate(
        {
            "_env_file": None,
            "sandbox_port": 9100,
            "kentico": {"base_url": "http://127.0.0.1:9100/kentico", "password": "p"},
        }
    )
    assert moved.sandbox_leftovers(["kentico"]) == ["COMMERCE_SYNC_KENTICO__BASE_URL"]
    default_address = Settings.model_validate(
        {"_env_file": None, "kentico": {"base_url": "http://127.0.0.1:8100/x", "password": "p"}}
    )
    assert default_address.sandbox_leftovers(["kentico"]) == ["COMMERCE_SYNC_KENTICO__BASE_URL"]
