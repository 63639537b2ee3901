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
