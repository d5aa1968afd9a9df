"""Settings from environment variables (prefix CIVICGRID_), defaulting to the local stack.

Every service builds one `PlatformSettings` (or a subclass adding its own fields) at start-up
and passes it down; nothing else reads the environment.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicgrid_common.paths import contracts_dir, local_state_dir


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVICGRID_", extra="ignore")

    # Which service this process is; it names the database, the CloudEvents source,
    # the Kafka client ids and the telemetry resource.
    service_name: str = "civicgrid"
    environment: str = "local"

    # PostgreSQL: each service owns one database on the server (named after the service
    # unless CIVICGRID_PG_DATABASE says otherwise).
    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_database: str | None = None
    pg_pool_min: int = 1
    pg_pool_max: int = 10
    # The unit of work's retry policy: a command that loses to a concurrent one (a concurrency
    # conflict, a deadlock, a serialization failure) is tried this many times in all, then
    # answered 503 with Retry-After (CIVICGRID_COMMAND_ATTEMPTS).
    command_attempts: int = Field(3, ge=1, le=10)
    # The district's working-day calendar, which intake owns and every other service applies.
    calendar_topic: str = "civicgrid.intake.calendar"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str | None = None

    # Contracts: where event schemas and the AsyncAPI document live, and the base URL
    # that CloudEvents' dataschema attribute points under (the gateway serves contracts/).
    contracts_dir: Path = Field(default_factory=contracts_dir)
    schema_base_url: str = "http://127.0.0.1:8000/contracts"

    # Identity: a JWKS as a file path or an http(s) URL (OIDC jwks_uri).
    jwks: str = Field(default_factory=lambda: str(local_state_dir() / "keys" / "jwks.json"))
    jwt_issuer: str = "civicgrid-local"
    jwt_audience: str = "civicgrid"
    # The identity provider (OIDC, Keycloak on the local stack): its tokens are trusted beside
    # those of `jwks` and `jwt_issuer`, each checked only against its own issuer's keys. Its keys
    # come from its discovery document's jwks_uri unless `oidc_jwks` names them.
    oidc_issuer: str | None = None
    oidc_jwks: str | None = None
    # Where this process reaches the identity provider when that is not its public issuer URL
    # (in docker-compose the issuer is http://127.0.0.1:8180/..., which a container cannot reach;
    # it reaches http://keycloak:8180/...): discovery and token requests go there, while tokens
    # and the discovery document still name the public issuer.
    oidc_backchannel_url: str | None = None
    # This service's own client at the identity provider, for the calls it makes as itself
    # (the client-credentials grant: notifications asking intake for a contact).
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None

    # HTTP
    max_request_bytes: int = 1_048_576
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    # After start-up, move every object alive then out of the cycle collector's sight (gc.freeze):
    # a full collection otherwise walks the whole heap of modules, models and schemas and stalls
    # the event loop for tens of milliseconds. Off in a process that builds many apps (tests).
    gc_freeze: bool = True

    # Telemetry
    log_level: str = "INFO"
    otlp_endpoint: str | None = None  # e.g. http://otel-collector:4318; None keeps spans in-process

    @property
    def database(self) -> str:
        return self.pg_database or self.service_name

    def dsn(self, database: str | None = None) -> str:
        auth = self.pg_user + (f":{self.pg_password}" if self.pg_password else "")
        return f"postgresql://{auth}@{self.pg_host}:{self.pg_port}/{database or self.database}"

    @property
    def client_id(self) -> str:
        return self.kafka_client_id or f"civicgrid-{self.service_name}"

    @property
    def source(self) -> str:
        """CloudEvents `source` of the events this service publishes."""
        return f"/civicgrid/{self.service_name}"
