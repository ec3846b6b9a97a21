"""Every configuration value of every process, read from the environment in one place.

`opsctl config` prints this table (name, default, description); the README points there.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    """Accept a variable under its documented name only (no prefix games)."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """Typed, frozen configuration shared by the gateway, the workers and opsctl."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # --- connections -----------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092",
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:15432/ops"),
        validation_alias=_env("DATABASE_URL"),
        description="Administrative (superuser) DSN; used by `opsctl migrate` only.",
    )
    ingest_database_url: SecretStr = Field(
        SecretStr("postgresql://ops_ingest:ops_ingest@127.0.0.1:15432/ops"),
        validation_alias=_env("OPS_INGEST_DATABASE_URL"),
        description="DSN of the INSERT-only role the workers write with.",
    )
    reader_database_url: SecretStr = Field(
        SecretStr("postgresql://ops_reader:ops_reader@127.0.0.1:15432/ops"),
        validation_alias=_env("OPS_READER_DATABASE_URL"),
        description="DSN of the SELECT-only role the read side uses.",
    )
    rollup_database_url: SecretStr = Field(
        SecretStr("postgresql://ops_rollup:ops_rollup@127.0.0.1:15432/ops"),
        validation_alias=_env("OPS_ROLLUP_DATABASE_URL"),
        description="DSN of the role the workers upsert closed windows with.",
    )
    alert_database_url: SecretStr = Field(
        SecretStr("postgresql://ops_alerter:ops_alerter@127.0.0.1:15432/ops"),
        validation_alias=_env("OPS_ALERT_DATABASE_URL"),
        description="DSN of the role the alert agent reads windows and keeps alert state with.",
    )
    ingest_role_password: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_INGEST_ROLE_PASSWORD"),
        description="When set, `opsctl migrate` sets this password on role ops_ingest.",
    )
    rollup_role_password: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_ROLLUP_ROLE_PASSWORD"),
        description="When set, `opsctl migrate` sets this password on role ops_rollup.",
    )
    alert_role_password: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_ALERT_ROLE_PASSWORD"),
        description="When set, `opsctl migrate` sets this password on role ops_alerter.",
    )
    reader_role_password: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_READER_ROLE_PASSWORD"),
        description="When set, `opsctl migrate` sets this password on role ops_reader.",
    )

    # --- topics ----------------------------------------------------------------------------
    telemetry_topic: str = Field(
        "ops.telemetry",
        validation_alias=_env("OPS_TELEMETRY_TOPIC"),
        description="Topic the gateway produces events to, keyed by app|env|event.",
    )
    dead_letter_topic: str = Field(
        "ops.telemetry.dlq",
        validation_alias=_env("OPS_DEAD_LETTER_TOPIC"),
        description="Topic the workers move undecodable or invalid messages to.",
    )
    windows_topic: str = Field(
        "ops.windows.5m",
        validation_alias=_env("OPS_WINDOWS_TOPIC"),
        description="Topic closed 5-minute windows are emitted to.",
    )
    telemetry_partitions: int = Field(
        6,
        ge=1,
        validation_alias=_env("OPS_TELEMETRY_PARTITIONS"),
        description="Partitions of the telemetry topic (caps the useful worker count).",
    )
    topic_replication_factor: int = Field(
        1,
        ge=1,
        validation_alias=_env("OPS_TOPIC_REPLICATION_FACTOR"),
        description="Replicas of the topics opsctl and the workers' Faust app create (3 in"
        " production, with min.insync.replicas 2 on the brokers).",
    )

    # --- gateway ---------------------------------------------------------------------------
    gateway_host: str = Field(
        "127.0.0.1", validation_alias=_env("OPS_GATEWAY_HOST"), description="Gateway bind host."
    )
    gateway_port: int = Field(
        18080, validation_alias=_env("OPS_GATEWAY_PORT"), description="Gateway bind port."
    )
    api_keys: SecretStr = Field(
        SecretStr("{}"),
        validation_alias=_env("OPS_API_KEYS"),
        description='API keys as JSON {"sha256:<hex>": ["app-a"]} (opsctl hash-key; plain keys'
        ' also work); "*" allows every app.',
    )
    rate_limit_events_per_s: float = Field(
        50_000.0,
        ge=0,
        validation_alias=_env("OPS_RATE_LIMIT_EVENTS_PER_S"),
        description="Events per second one API key may send (0: no limit); beyond it, 429.",
    )
    rate_limit_burst_events: int = Field(
        100_000,
        ge=1,
        validation_alias=_env("OPS_RATE_LIMIT_BURST_EVENTS"),
        description="Events one API key may send at once before its rate limit applies.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        validation_alias=_env("OPS_MAX_BODY_BYTES"),
        description="Largest request body accepted on the wire (compressed size).",
    )
    max_decompressed_bytes: int = Field(
        8_388_608,
        validation_alias=_env("OPS_MAX_DECOMPRESSED_BYTES"),
        description="Largest body after gzip decompression (guards against gzip bombs).",
    )
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("OPS_BODY_READ_TIMEOUT_S"),
        description="A request body must arrive within this long (slow clients get 408).",
    )
    max_batch_events: int = Field(
        1000,
        validation_alias=_env("OPS_MAX_BATCH_EVENTS"),
        description="Most events one request may carry.",
    )
    max_extra_bytes: int = Field(
        4096,
        validation_alias=_env("OPS_MAX_EXTRA_BYTES"),
        description="Largest serialized `extra` object per event.",
    )
    produce_timeout_s: float = Field(
        5.0,
        validation_alias=_env("OPS_PRODUCE_TIMEOUT_S"),
        description="How long a request waits for Kafka acks before answering 503.",
    )
    retry_after_s: int = Field(
        5,
        validation_alias=_env("OPS_RETRY_AFTER_S"),
        description="Retry-After seconds sent with 503 answers.",
    )
    max_inflight_events: int = Field(
        200_000,
        validation_alias=_env("OPS_MAX_INFLIGHT_EVENTS"),
        description="Events awaiting Kafka acks across all requests; beyond it requests get 503.",
    )
    kafka_probe_interval_s: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("OPS_KAFKA_PROBE_INTERVAL_S"),
        description="After a failed produce, if no broker answers a metadata request, the "
        "gateway answers 503 at once (nothing produced) and asks Kafka again this often; the "
        "first answer lets requests through again.",
    )
    producer_linger_ms: int = Field(
        5,
        validation_alias=_env("OPS_PRODUCER_LINGER_MS"),
        description="aiokafka linger.ms: how long to wait to fill a produce batch.",
    )
    producer_max_batch_bytes: int = Field(
        262_144,
        validation_alias=_env("OPS_PRODUCER_MAX_BATCH_BYTES"),
        description="aiokafka max_batch_size per partition.",
    )

    # --- workers ---------------------------------------------------------------------------
    worker_app_id: str = Field(
        "ops-workers",
        validation_alias=_env("OPS_WORKER_APP_ID"),
        description="Faust app id (also the consumer group).",
    )
    worker_batch_max: int = Field(
        2000,
        validation_alias=_env("OPS_WORKER_BATCH_MAX"),
        description="Most events the persist agent writes in one INSERT.",
    )
    worker_batch_within_s: float = Field(
        0.25,
        validation_alias=_env("OPS_WORKER_BATCH_WITHIN_S"),
        description="Longest the persist agent waits to fill a batch.",
    )
    worker_http_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("OPS_WORKER_HTTP_HOST"),
        description="Bind host of the worker's /metrics and health endpoints.",
    )
    worker_http_port: int = Field(
        19101,
        validation_alias=_env("OPS_WORKER_HTTP_PORT"),
        description="Bind port of the worker's /metrics and health endpoints.",
    )
    worker_data_dir: str = Field(
        ".stack/worker-data",
        validation_alias=_env("OPS_WORKER_DATA_DIR"),
        description="Faust's local data directory.",
    )
    worker_session_timeout_s: float = Field(
        10.0,
        validation_alias=_env("OPS_WORKER_SESSION_TIMEOUT_S"),
        description="How soon a crashed worker's partitions move to the others.",
    )
    db_retry_max_s: float = Field(
        10.0,
        validation_alias=_env("OPS_DB_RETRY_MAX_S"),
        description="Longest back-off between attempts when PostgreSQL is unreachable.",
    )

    windows_enabled: bool = Field(
        True,
        validation_alias=_env("OPS_WINDOWS_ENABLED"),
        description="Keep the 5-minute windows (false: the workers only persist events).",
    )
    window_grace_s: float = Field(
        30.0,
        ge=0,
        validation_alias=_env("OPS_WINDOW_GRACE_S"),
        description="A window closes this long (wall clock) after its end.",
    )
    window_retention_s: float = Field(
        86_400.0,
        validation_alias=_env("OPS_WINDOW_RETENTION_S"),
        description="How long after its end a window stays open to late events (then dropped).",
    )
    window_close_interval_s: float = Field(
        1.0,
        validation_alias=_env("OPS_WINDOW_CLOSE_INTERVAL_S"),
        description="How often the workers look for windows to close.",
    )
    kpi_gauge_max_keys: int = Field(
        500,
        validation_alias=_env("OPS_KPI_GAUGE_MAX_KEYS"),
        description="Most app/env/event keys exported as KPI gauges (bounds label cardinality).",
    )

    # --- alert agent ---------------------------------------------------------------------
    alert_host: str = Field(
        "127.0.0.1", validation_alias=_env("OPS_ALERT_HOST"), description="Alert agent bind host."
    )
    alert_port: int = Field(
        18090, validation_alias=_env("OPS_ALERT_PORT"), description="Alert agent bind port."
    )
    alert_rules_file: str = Field(
        "",
        validation_alias=_env("OPS_ALERT_RULES_FILE"),
        description="YAML rules file; empty uses the packaged alert_agent/default_rules.yaml.",
    )
    alert_dry_run: bool = Field(
        True,
        validation_alias=_env("OPS_ALERT_DRY_RUN"),
        description="Log what would be sent instead of sending (false arms Slack).",
    )
    slack_webhook_url: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_SLACK_WEBHOOK_URL"),
        description="Slack incoming-webhook URL the armed agent posts to.",
    )
    slack_bot_token: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_SLACK_BOT_TOKEN"),
        description="Slack bot token (chat.postMessage), used with OPS_SLACK_CHANNEL.",
    )
    slack_channel: str = Field(
        "",
        validation_alias=_env("OPS_SLACK_CHANNEL"),
        description="Channel the bot token posts to, e.g. #ops-alerts.",
    )
    slack_api_url: str = Field(
        "https://slack.com/api/",
        validation_alias=_env("OPS_SLACK_API_URL"),
        description="Slack Web API base URL (tests point it at a local stand-in).",
    )
    alert_repeat_interval_s: float = Field(
        14_400.0,
        gt=0,
        validation_alias=_env("OPS_ALERT_REPEAT_INTERVAL_S"),
        description="A rule still firing is announced again after this long (rules may override).",
    )
    alert_eval_interval_s: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("OPS_ALERT_EVAL_INTERVAL_S"),
        description="Evaluation also runs this often, besides on every closed window.",
    )
    alert_lookback_s: float = Field(
        3_600.0,
        gt=0,
        validation_alias=_env("OPS_ALERT_LOOKBACK_S"),
        description="How far back a freshly started agent looks for closed windows.",
    )
    alert_retry_max_s: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("OPS_ALERT_RETRY_MAX_S"),
        description="Longest wait between attempts at a notification Slack keeps refusing "
        "(also how late, at most, the first message goes once Slack is back).",
    )
    alert_group_id: str = Field(
        "ops-alert-agent",
        validation_alias=_env("OPS_ALERT_GROUP_ID"),
        description="Consumer group the agent reads closed windows with.",
    )

    # --- dashboard -------------------------------------------------------------------------
    dashboard_host: str = Field(
        "127.0.0.1", validation_alias=_env("OPS_DASHBOARD_HOST"), description="Dashboard bind host."
    )
    dashboard_port: int = Field(
        18070, validation_alias=_env("OPS_DASHBOARD_PORT"), description="Dashboard bind port."
    )
    dashboard_token: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_DASHBOARD_TOKEN"),
        description="Read token for /ops and its API (required; open /ops?token=… once).",
    )
    dashboard_refresh_s: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("OPS_DASHBOARD_REFRESH_S"),
        description="Auto-refresh interval of the /ops page.",
    )
    dashboard_gateway_url: str = Field(
        "http://127.0.0.1:18080",
        validation_alias=_env("OPS_DASHBOARD_GATEWAY_URL"),
        description="Gateway the dashboard's 'send test event' button posts through.",
    )
    dashboard_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("OPS_DASHBOARD_API_KEY"),
        description="API key for that test event (allowed for app ops-dashboard); unset hides it.",
    )

    # --- logging ---------------------------------------------------------------------------
    log_level: str = Field(
        "INFO", validation_alias=_env("OPS_LOG_LEVEL"), description="Log level of every process."
    )
    log_json: bool = Field(
        False,
        validation_alias=_env("OPS_LOG_JSON"),
        description="Log JSON lines instead of console-formatted lines.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys_as_json(cls, value: object) -> object:
        # Code and tests may pass the mapping itself; the environment passes JSON text.
        return json.dumps(value) if isinstance(value, dict) else value

    @cached_property
    def api_key_apps(self) -> dict[str, frozenset[str]]:
        """API keys by SHA-256 digest, so no plain key is kept in lookups or logs. Raises
        ApiKeysInvalid (naming no key) when OPS_API_KEYS is not a JSON object of lists."""
        try:
            raw = json.loads(self.api_keys.get_secret_value())
        except ValueError:
            raise ApiKeysInvalid("OPS_API_KEYS is not valid JSON") from None
        if not isinstance(raw, dict) or not all(
            isinstance(apps, list) and all(isinstance(a, str) for a in apps)
            for apps in raw.values()
        ):
            raise ApiKeysInvalid('OPS_API_KEYS must be a JSON object {"<key>": ["<app>", ...]}')
        return {_digest_of(key): frozenset(apps) for key, apps in raw.items()}


class ApiKeysInvalid(ValueError):
    """OPS_API_KEYS cannot be used; the message never contains a key."""


HASHED_PREFIX = "sha256:"


def api_key_digest(key: str) -> str:
    """The digest under which `Settings.api_key_apps` files a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def hashed_api_key(key: str) -> str:
    """The form to put in OPS_API_KEYS instead of the key itself."""
    return HASHED_PREFIX + api_key_digest(key)


def _digest_of(configured: str) -> str:
    digest = configured.removeprefix(HASHED_PREFIX)
    if configured.startswith(HASHED_PREFIX) and len(digest) == 64:
        return digest.lower()
    return api_key_digest(configured)
