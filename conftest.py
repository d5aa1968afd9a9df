"""Fixtures shared by every test: the real PostgreSQL and Kafka of the local stack; and the
split of the tests into two layers.

The unit layer (UNIT_LAYER) opens no network socket: no database, no broker, no HTTP server.
Every test there runs with sockets refused (pytest-socket), so a test that needs the stack and
was filed as a unit test fails, naming the socket it tried. Every other test is an
integration test and carries the `integration` marker.

Integration tests get a fresh database and fresh topics of their own, so they can run in any
order next to each other and next to the running services. If the stack is not there, the
test fails with the reason: it is never skipped.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from civicgrid_common.db import create_pool
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

# A test process builds hundreds of apps: freezing the heap at each start would keep every
# earlier app's cyclic garbage for good (tests/security freezes once, around its own run).
os.environ.setdefault("CIVICGRID_GC_FREEZE", "false")


ROOT = Path(__file__).resolve().parent
# The folders of the unit layer (`make test-unit`): each service's and the platform's tests/unit,
# and the checks of the repository itself (its architecture, its contracts folder).
UNIT_LAYER = ("libs/common/tests/unit", "services/*/tests/unit", "tests/architecture", "tests/contract")


def unit_folders() -> list[Path]:
    return sorted(folder for pattern in UNIT_LAYER for folder in ROOT.glob(pattern) if folder.is_dir())


def in_unit_layer(path: Path, folders: list[Path]) -> bool:
    return any(Path(path).resolve().is_relative_to(folder) for folder in folders)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folders = unit_folders()
    for item in items:
        if in_unit_layer(item.path, folders):
            if item.get_closest_marker("integration"):
                raise pytest.UsageError(f"{item.nodeid} is marked integration but lies in the unit layer; "
                                        "move it to its tests/integration folder")
            item.add_marker(pytest.mark.disable_socket)  # pytest-socket: refused for the whole test
        else:
            item.add_marker(pytest.mark.integration)


def _stack_settings(**overrides) -> PlatformSettings:
    return PlatformSettings(service_name="tests", **overrides)


@pytest.fixture
def token():
    """Authorization headers with a token signed by the local stack's key (.local/keys)."""
    def make(role: str, jurisdiction: str = "320104", **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **kw)}"}

    return make


@pytest.fixture
def settings() -> PlatformSettings:
    return _stack_settings()


@pytest.fixture
async def fresh_db(settings: PlatformSettings):
    """A new, empty database on the local stack's server; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(settings.dsn("postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL of the local stack is not reachable at {settings.pg_host}:{settings.pg_port} "
                    f"({exc!r}); run `make up`", pytrace=False)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _stack_settings(pg_database=name)
    admin = await asyncpg.connect(settings.dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(fresh_db: PlatformSettings):
    p = await create_pool(fresh_db)
    yield p
    await p.close()


@pytest.fixture
async def new_topic(settings: PlatformSettings):
    """Factory: create a uniquely named topic on the local broker and return its name."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    try:
        await admin.start()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the broker fails the test
        pytest.fail(f"Kafka of the local stack is not reachable at {settings.kafka_bootstrap} ({exc!r}); "
                    "run `make up`", pytrace=False)
    created: list[str] = []

    async def make(prefix: str = "test", partitions: int = 3) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        return name

    yield make
    if created:
        try:
            await admin.delete_topics(created)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
    await admin.close()
