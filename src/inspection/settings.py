"""All configuration, read once from ``INSPECTION_*`` environment variables and validated at start.

A bad value stops the service with a message naming the variable, so a typo in a deployment
manifest fails loudly at start instead of surfacing as a confusing error on the first request.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MIN_SECRET_LENGTH = 32


class ConfigurationError(Exception):
    """A configuration variable is missing or malformed; the message names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where the S3-compatible object store (MinIO in production) lives."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool
    region: str | None
    # Days that evidence originals are kept under COMPLIANCE retention (0: no object lock).
    object_lock_days: int = 0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the service waits on its back-ends before it answers 503 with `Retry-After`.

    The defaults are the production values, chosen and explained in docs/operations.md; they are
    not read from the environment. Tests pass smaller ones to keep fault tests short.
    """

    # PostgreSQL: opening a connection (TCP, TLS, authentication), any one statement (asyncpg
    # `command_timeout`, also bounds the pool's pre-ping), waiting for a free pooled connection.
    database_connect: float = 3.0
    database_statement: float = 5.0
    database_pool: float = 5.0
    # Object store: TCP connect, the longest silence while waiting for bytes of an answer.
    store_connect: float = 2.0
    store_read: float = 5.0
    # Retries of one store request: connections that could not be opened, and 500/502/503/504
    # answers. A request that went unanswered is never retried: that would only double the wait.
    store_connect_retries: int = 1
    store_status_retries: int = 2
    store_backoff: float = 0.2
    # The store's own threads (and HTTP connections), and how long a call waits for one.
    store_threads: int = 16
    store_queue: float = 2.0
    # `/health/ready` answers within this, whatever its probes are stuck on.
    readiness: float = 3.0


@dataclass(frozen=True, slots=True)
class LimitationYears:
    """Statute of limitations of discipline (thời hiệu), in years from the violation, by class of
    measure. Defaults: Law on Cán bộ, Công chức (amended 2019), Art. 80, and Law on Viên chức
    (amended 2019), Art. 53: 5 years where the measure is a reprimand, 10 for the others."""

    reprimand: int = 5
    other: int = 10

    def for_measure(self, measure: str) -> int:
        """The years for a measure (`reprimand`, or any other)."""
        return self.reprimand if measure == "reprimand" else self.other


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed configuration of one service process."""

    data_dir: Path
    database_url: str
    objects_dir: Path
    s3: S3Settings | None
    secret_key: str
    admin_password: str | None
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    login_max_delay_seconds: int = 60
    max_json_body_mb: int = 10
    max_upload_mb: int = 25
    # Memory (MiB) that the image decodes of one process may use together (evidence/budget.py).
    decode_memory_mb: int = 1024
    timezone: str = "Asia/Ho_Chi_Minh"
    auto_migrate: bool = True
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()
    database_pool_size: int = 10
    argon2_memory_kib: int = 64 * 1024
    max_extensions: int = 2
    # Days overdue at which escalation levels 1, 2, 3, ... are raised.
    escalation_days: tuple[int, ...] = (1, 7, 30)
    due_soon_days: int = 3
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 12
    discipline_limitation_years: LimitationYears = LimitationYears()
    # Incidents in a rolling 12 months at which an official is flagged as a repeat offender.
    repeat_threshold: int = 2
    # The agency named above the national motto on every report ("SỞ NỘI VỤ TỈNH …").
    report_issuer: str = "SỞ NỘI VỤ"
    timeouts: Timeouts = Timeouts()
    # Where reports read (a read replica); None: the main database.
    reports_database_url: str | None = None

    @property
    def reports_url(self) -> str:
        """The database the reports read from: the replica if one is set, else the main one."""
        return self.reports_database_url or self.database_url

    @property
    def is_sqlite(self) -> bool:
        """Whether records live in the embedded SQLite database."""
        return self.database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        """The largest evidence file accepted, in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @property
    def decode_memory_bytes(self) -> int:
        """The decode memory budget of the process, in bytes."""
        return self.decode_memory_mb * 1024 * 1024

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone in which due dates fall due."""
        return ZoneInfo(self.timezone)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(name, f"must be true or false, got {raw!r}")


def _database_url(
    env: Mapping[str, str], data_dir: Path, name: str = "INSPECTION_DATABASE_URL"
) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return f"sqlite+aiosqlite:///{data_dir / 'inspection.db'}"
    scheme = raw.split("://", 1)[0]
    # Accept the plain URLs operators copy from their database console and pick the async driver.
    aliases = {
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
        "postgresql+asyncpg": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
        "sqlite+aiosqlite": "sqlite+aiosqlite",
    }
    if "://" not in raw or scheme not in aliases:
        raise ConfigurationError(
            name, "must be a postgresql://… or sqlite:///… URL (drivers asyncpg, aiosqlite)"
        )
    return aliases[scheme] + raw[len(scheme) :]


def _s3(env: Mapping[str, str]) -> S3Settings | None:
    endpoint = env.get("INSPECTION_S3_ENDPOINT", "").strip()
    if not endpoint:
        return None
    secure = _bool(env, "INSPECTION_S3_SECURE", default=endpoint.startswith("https://"))
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
            raise ConfigurationError(
                "INSPECTION_S3_ENDPOINT", "must be host:port or http(s)://host:port"
            )
        endpoint = parts.netloc
    access_key = env.get("INSPECTION_S3_ACCESS_KEY", "")
    secret_key = env.get("INSPECTION_S3_SECRET_KEY", "")
    if not access_key:
        raise ConfigurationError(
            "INSPECTION_S3_ACCESS_KEY", "is required with INSPECTION_S3_ENDPOINT"
        )
    if not secret_key:
        raise ConfigurationError(
            "INSPECTION_S3_SECRET_KEY", "is required with INSPECTION_S3_ENDPOINT"
        )
    bucket = env.get("INSPECTION_S3_BUCKET", "inspection-evidence").strip()
    # S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens.
    if not (3 <= len(bucket) <= 63) or not all(
        c.islower() or c.isdigit() or c in ".-" for c in bucket
    ):
        raise ConfigurationError("INSPECTION_S3_BUCKET", f"is not a valid bucket name: {bucket!r}")
    region = env.get("INSPECTION_S3_REGION", "").strip() or None
    lock_days = _int(env, "INSPECTION_S3_OBJECT_LOCK_DAYS", 0, minimum=0)
    if lock_days > 36500:
        raise ConfigurationError("INSPECTION_S3_OBJECT_LOCK_DAYS", "must be at most 36500")
    return S3Settings(endpoint, access_key, secret_key, bucket, secure, region, lock_days)


def _secret_key(env: Mapping[str, str], data_dir: Path, embedded: bool) -> str:
    name = "INSPECTION_SECRET_KEY"
    raw = env.get(name, "")
    if raw:
        if len(raw) < _MIN_SECRET_LENGTH:
            raise ConfigurationError(name, f"must be at least {_MIN_SECRET_LENGTH} characters")
        return raw
    if not embedded:
        # Several processes share one database in production: each generating its own key
        # would make tokens of one worker invalid on the next.
        raise ConfigurationError(name, "is required when the database is not the embedded SQLite")
    key_file = data_dir / "secret_key"
    if key_file.exists():
        stored = key_file.read_text().strip()
        if len(stored) >= _MIN_SECRET_LENGTH:
            return stored
    key_file.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


def _max_upload_mb(env: Mapping[str, str]) -> int:
    value = _int(env, "INSPECTION_MAX_UPLOAD_MB", 25)
    if value > 2048:
        raise ConfigurationError("INSPECTION_MAX_UPLOAD_MB", "must be at most 2048")
    return value


def _escalation_days(env: Mapping[str, str]) -> tuple[int, ...]:
    name = "INSPECTION_ESCALATION_DAYS"
    raw = env.get(name, "").strip()
    if not raw:
        return (1, 7, 30)
    try:
        days = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigurationError(name, "must be comma-separated whole days, e.g. 1,7,30") from None
    if not days or any(d < 1 for d in days) or list(days) != sorted(set(days)):
        raise ConfigurationError(name, "must be increasing positive days, e.g. 1,7,30")
    return days


def _report_issuer(env: Mapping[str, str]) -> str:
    name = "INSPECTION_REPORT_ISSUER"
    value = unicodedata.normalize("NFC", " ".join(env.get(name, "").split()))
    if len(value) > 120:
        raise ConfigurationError(name, f"must be at most 120 characters, got {len(value)}")
    return value or "SỞ NỘI VỤ"


def _limitation_years(env: Mapping[str, str]) -> LimitationYears:
    name = "INSPECTION_DISCIPLINE_LIMITATION_YEARS"
    raw = env.get(name, "").strip()
    if not raw:
        return LimitationYears()
    values: dict[str, int] = {}
    for part in raw.split(","):
        key, sep, number = part.partition("=")
        key = key.strip()
        if not sep or key not in {"reprimand", "other"} or key in values:
            raise ConfigurationError(
                name, "must be reprimand=<years>,other=<years> (either may be left out)"
            )
        try:
            years = int(number)
        except ValueError:
            raise ConfigurationError(name, f"{key}: must be whole years, got {number!r}") from None
        if not 1 <= years <= 100:
            raise ConfigurationError(name, f"{key}: must be 1 to 100 years, got {years}")
        values[key] = years
    return LimitationYears(**values)


def _webhook(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    url = env.get("INSPECTION_WEBHOOK_URL", "").strip() or None
    secret = env.get("INSPECTION_WEBHOOK_SECRET", "") or None
    if url is None:
        return None, None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError("INSPECTION_WEBHOOK_URL", "must be an http(s) URL")
    if secret is None or len(secret) < 16:
        raise ConfigurationError(
            "INSPECTION_WEBHOOK_SECRET", "is required with a webhook URL (at least 16 characters)"
        )
    return url, secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise `ConfigurationError` naming the bad variable."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("INSPECTION_DATA_DIR", "").strip() or "var").resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            "INSPECTION_DATA_DIR", f"cannot create {data_dir}: {exc}"
        ) from None
    database_url = _database_url(env, data_dir)
    reports_database_url = (
        _database_url(env, data_dir, "INSPECTION_REPORTS_DATABASE_URL")
        if env.get("INSPECTION_REPORTS_DATABASE_URL", "").strip()
        else None
    )
    s3 = _s3(env)
    objects_dir = Path(env.get("INSPECTION_OBJECTS_DIR", "").strip() or data_dir / "objects")
    timezone = env.get("INSPECTION_TIMEZONE", "").strip() or "Asia/Ho_Chi_Minh"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError("INSPECTION_TIMEZONE", f"unknown time zone {timezone!r}") from None
    log_level = env.get("INSPECTION_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigurationError("INSPECTION_LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")
    admin_password = env.get("INSPECTION_ADMIN_PASSWORD") or None
    if admin_password is not None and len(admin_password) < 8:
        raise ConfigurationError("INSPECTION_ADMIN_PASSWORD", "must be at least 8 characters")
    cors = tuple(o.strip() for o in env.get("INSPECTION_CORS_ORIGINS", "").split(",") if o.strip())
    embedded = database_url.startswith("sqlite")
    webhook_url, webhook_secret = _webhook(env)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        objects_dir=objects_dir.resolve(),
        s3=s3,
        secret_key=_secret_key(env, data_dir, embedded),
        admin_password=admin_password,
        access_token_ttl_seconds=_int(env, "INSPECTION_ACCESS_TOKEN_TTL", 900, minimum=30),
        refresh_token_ttl_seconds=_int(env, "INSPECTION_REFRESH_TOKEN_TTL", 30 * 24 * 3600, 60),
        login_max_failures=_int(env, "INSPECTION_LOGIN_MAX_FAILURES", 5),
        login_lockout_seconds=_int(env, "INSPECTION_LOGIN_LOCKOUT_SECONDS", 900),
        login_max_delay_seconds=_int(env, "INSPECTION_LOGIN_MAX_DELAY_SECONDS", 60),
        max_json_body_mb=_int(env, "INSPECTION_MAX_JSON_BODY_MB", 10),
        max_upload_mb=_max_upload_mb(env),
        decode_memory_mb=_int(env, "INSPECTION_DECODE_MEMORY_MB", 1024, minimum=64),
        timezone=timezone,
        auto_migrate=_bool(env, "INSPECTION_AUTO_MIGRATE", default=True),
        log_level=log_level,
        cors_origins=cors,
        database_pool_size=_int(env, "INSPECTION_DATABASE_POOL_SIZE", 10),
        argon2_memory_kib=_int(env, "INSPECTION_ARGON2_MEMORY_KIB", 64 * 1024, minimum=8 * 1024),
        max_extensions=_int(env, "INSPECTION_MAX_EXTENSIONS", 2, minimum=0),
        escalation_days=_escalation_days(env),
        due_soon_days=_int(env, "INSPECTION_DUE_SOON_DAYS", 3, minimum=0),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_max_attempts=_int(env, "INSPECTION_WEBHOOK_MAX_ATTEMPTS", 12),
        discipline_limitation_years=_limitation_years(env),
        repeat_threshold=_int(env, "INSPECTION_REPEAT_THRESHOLD", 2),
        report_issuer=_report_issuer(env),
        reports_database_url=reports_database_url,
    )
