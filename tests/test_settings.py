"""Configuration: defaults, validation naming the variable, the generated secret key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inspection.cli import main
from inspection.settings import ConfigurationError, load_settings


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings({"INSPECTION_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'inspection.db'}"
    assert settings.objects_dir == tmp_path / "objects"
    assert settings.s3 is None
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.max_json_body_mb == 10


def test_the_report_issuer_is_the_department_unless_named(tmp_path: Path) -> None:
    base = {"INSPECTION_DATA_DIR": str(tmp_path)}
    assert load_settings(base).report_issuer == "SỞ NỘI VỤ"
    named = {**base, "INSPECTION_REPORT_ISSUER": "  Sở Nội vụ   tỉnh\tThái Nguyên "}
    assert load_settings(named).report_issuer == "Sở Nội vụ tỉnh Thái Nguyên"
    with pytest.raises(ConfigurationError, match="INSPECTION_REPORT_ISSUER"):
        load_settings({**base, "INSPECTION_REPORT_ISSUER": "x" * 121})


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"INSPECTION_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"INSPECTION_DATA_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_postgres_requires_a_secret_key(tmp_path: Path) -> None:
    env = {"INSPECTION_DATA_DIR": str(tmp_path), "INSPECTION_DATABASE_URL": "postgresql://u@h/db"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert caught.value.variable == "INSPECTION_SECRET_KEY"
    settings = load_settings({**env, "INSPECTION_SECRET_KEY": "k" * 40})
    assert settings.database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INSPECTION_DATABASE_URL", "mysql://x"),
        ("INSPECTION_MAX_JSON_BODY_MB", "lots"),
        ("INSPECTION_MAX_JSON_BODY_MB", "0"),
        ("INSPECTION_TIMEZONE", "Mars/Olympus"),
        ("INSPECTION_AUTO_MIGRATE", "perhaps"),
        ("INSPECTION_SECRET_KEY", "short"),
        ("INSPECTION_ADMIN_PASSWORD", "123"),
        ("INSPECTION_LOG_LEVEL", "LOUD"),
        ("INSPECTION_S3_ENDPOINT", "ftp://x"),
        ("INSPECTION_ACCESS_TOKEN_TTL", "5"),
        ("INSPECTION_ARGON2_MEMORY_KIB", "64MB"),
        ("INSPECTION_ARGON2_MEMORY_KIB", "1024"),
        ("INSPECTION_MAX_UPLOAD_MB", "0"),
        ("INSPECTION_MAX_UPLOAD_MB", "4096"),
        ("INSPECTION_ESCALATION_DAYS", "7,1"),
        ("INSPECTION_ESCALATION_DAYS", "one,two"),
        ("INSPECTION_ESCALATION_DAYS", "0,7"),
        ("INSPECTION_MAX_EXTENSIONS", "-1"),
        ("INSPECTION_WEBHOOK_URL", "ftp://hooks.example"),
        ("INSPECTION_WEBHOOK_SECRET", None),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str | None) -> None:
    env = {"INSPECTION_DATA_DIR": str(tmp_path)}
    if value is None:  # a webhook URL without its secret
        env["INSPECTION_WEBHOOK_URL"] = "https://hooks.example/inspection"
    else:
        env[variable] = value
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_s3_settings(tmp_path: Path) -> None:
    base = {
        "INSPECTION_DATA_DIR": str(tmp_path),
        "INSPECTION_S3_ENDPOINT": "https://minio.local:9000",
    }
    with pytest.raises(ConfigurationError) as caught:
        load_settings(base)
    assert caught.value.variable == "INSPECTION_S3_ACCESS_KEY"
    settings = load_settings(
        {
            **base,
            "INSPECTION_S3_ACCESS_KEY": "a",
            "INSPECTION_S3_SECRET_KEY": "b",
            "INSPECTION_S3_BUCKET": "evidence",
        }
    )
    assert settings.s3 is not None
    assert (settings.s3.endpoint, settings.s3.secure, settings.s3.bucket) == (
        "minio.local:9000",
        True,
        "evidence",
    )
    with pytest.raises(ConfigurationError) as bad_bucket:
        load_settings(
            {
                **base,
                "INSPECTION_S3_ACCESS_KEY": "a",
                "INSPECTION_S3_SECRET_KEY": "b",
                "INSPECTION_S3_BUCKET": "Bad_Name",
            }
        )
    assert bad_bucket.value.variable == "INSPECTION_S3_BUCKET"


def test_serve_refuses_to_start_on_bad_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTION_TIMEZONE", "Nowhere/Land")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "INSPECTION_TIMEZONE" in result.output


def _serve_without_serving(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what `serve` would start instead of migrating and starting uvicorn."""
    import uvicorn

    import inspection.cli

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(inspection.cli, "_prepare", lambda settings, migrate: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kw: started.append(kw))
    return started


def test_serve_refuses_several_workers_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INSPECTION_DATABASE_URL", raising=False)
    started = _serve_without_serving(monkeypatch)
    result = CliRunner().invoke(main, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "SQLite serves one process: run --workers 1, or use PostgreSQL" in result.output
    assert started == []
    assert not (tmp_path / "inspection.db").exists()  # refused before migrating anything

    one = CliRunner().invoke(main, ["serve", "--workers", "1"])
    assert one.exit_code == 0, one.output
    assert [kw["workers"] for kw in started] == [1]


def test_serve_runs_several_workers_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", "postgresql://u:p@db.internal/inspection")
    monkeypatch.setenv("INSPECTION_SECRET_KEY", "k" * 40)
    started = _serve_without_serving(monkeypatch)
    result = CliRunner().invoke(main, ["serve", "--workers", "4"])
    assert result.exit_code == 0, result.output
    assert [kw["workers"] for kw in started] == [4]


def test_evidence_action_and_webhook_settings(tmp_path: Path) -> None:
    defaults = load_settings({"INSPECTION_DATA_DIR": str(tmp_path)})
    assert defaults.max_upload_bytes == 25 * 1024 * 1024
    assert (defaults.max_extensions, defaults.escalation_days) == (2, (1, 7, 30))
    assert defaults.webhook_url is None
    settings = load_settings(
        {
            "INSPECTION_DATA_DIR": str(tmp_path),
            "INSPECTION_MAX_UPLOAD_MB": "50",
            "INSPECTION_ESCALATION_DAYS": "2,5,14,60",
            "INSPECTION_WEBHOOK_URL": "https://hooks.example/inspection",
            "INSPECTION_WEBHOOK_SECRET": "s" * 16,
            "INSPECTION_S3_ENDPOINT": "minio:9000",
            "INSPECTION_S3_ACCESS_KEY": "a",
            "INSPECTION_S3_SECRET_KEY": "b",
            "INSPECTION_S3_OBJECT_LOCK_DAYS": "3650",
        }
    )
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.escalation_days == (2, 5, 14, 60)
    assert settings.webhook_url == "https://hooks.example/inspection"
    assert settings.s3 is not None and settings.s3.object_lock_days == 3650


def test_decode_memory_budget(tmp_path: Path) -> None:
    base = {"INSPECTION_DATA_DIR": str(tmp_path)}
    default = load_settings(base)
    assert default.decode_memory_mb == 1024  # sized for a 2 GB worker (docs/operations.md)
    assert default.decode_memory_bytes == 1024 * 1024 * 1024
    assert load_settings({**base, "INSPECTION_DECODE_MEMORY_MB": " 600 "}).decode_memory_mb == 600
    for bad in ("lots", "0", "-5", "63", "1.5"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({**base, "INSPECTION_DECODE_MEMORY_MB": bad})
        assert caught.value.variable == "INSPECTION_DECODE_MEMORY_MB"
        assert "INSPECTION_DECODE_MEMORY_MB" in str(caught.value)
