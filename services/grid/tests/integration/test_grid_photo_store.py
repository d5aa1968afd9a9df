"""The grid service's photo store on the real PostgreSQL of the local stack (a fresh database per
test, from the root conftest's `pool`): stored once by content address, read back, missing
digests reported."""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from PIL import Image

from civicgrid_common.problems import RuleViolation

from civicgrid_grid.adapters.photos import PhotoStore, SanitisedPhoto, StoredPhoto, install, sanitise

pytestmark = pytest.mark.integration

GRID = "320104001001001"
OTHER_GRID = "320104001001002"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


def photo(colour: tuple[int, int, int] = (200, 30, 30), fmt: str = "JPEG") -> SanitisedPhoto:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, fmt)
    return sanitise(out.getvalue())


@pytest.fixture
async def store(pool: asyncpg.Pool) -> PhotoStore:
    await install(pool)
    await install(pool)  # idempotent, as every replica runs it at start-up
    return PhotoStore(pool)


async def rows(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM grid_photos")


async def test_a_photo_is_stored_and_read_back_as_it_was(store: PhotoStore):
    p = photo()
    digest = await store.put(p, uploaded_by="worker-7", grid=GRID, at=T0)

    assert digest == p.sha256 == hashlib.sha256(p.content).hexdigest()
    got = await store.get(digest)
    assert got == StoredPhoto(sha256=p.sha256, media_type="image/jpeg", content=p.content, size=p.size,
                              width=32, height=24, uploaded_by="worker-7", uploaded_at=T0, grid=GRID)
    assert isinstance(got.content, bytes)


async def test_the_same_photo_twice_is_one_row_and_keeps_its_first_upload(store: PhotoStore, pool: asyncpg.Pool):
    p = photo()
    first = await store.put(p, uploaded_by="worker-7", grid=GRID, at=T0)
    again = await store.put(photo(), uploaded_by="worker-9", grid=OTHER_GRID, at=T0 + timedelta(hours=1))

    assert first == again
    assert await rows(pool) == 1
    got = await store.get(first)
    assert (got.uploaded_by, got.grid, got.uploaded_at) == ("worker-7", GRID, T0)

    await store.put(photo((10, 200, 10), "PNG"), uploaded_by="worker-7", grid=GRID, at=T0)
    assert await rows(pool) == 2


async def test_missing_digests_are_reported(store: PhotoStore):
    a = await store.put(photo((200, 0, 0)), uploaded_by="worker-7", grid=GRID, at=T0)
    b = await store.put(photo((0, 0, 200), "WEBP"), uploaded_by="worker-7", grid=GRID, at=T0)
    unknown = hashlib.sha256(b"never uploaded").hexdigest()

    assert await store.missing([a, b]) == set()
    assert await store.missing([a, unknown, b, unknown]) == {unknown}
    assert await store.missing([]) == set()
    assert await store.missing(iter([unknown])) == {unknown}
    assert await store.get(unknown) is None


async def test_what_is_not_a_digest_is_not_looked_up(store: PhotoStore):
    for bad in ("", "A" * 64, "0" * 63, "g" * 64, "0" * 64 + "\n", "'; DROP TABLE grid_photos; --"):
        assert await store.get(bad) is None
    with pytest.raises(RuleViolation) as caught:
        await store.missing(["0" * 64, "NOT-A-DIGEST"])
    assert (caught.value.code, caught.value.field) == ("invalid_photo", "photos/1")
    with pytest.raises(RuleViolation) as caught:
        await store.missing(["0" * 64] * 101)
    assert caught.value.code == "too_many_photos"


async def test_what_is_stored_is_bounded(store: PhotoStore, pool: asyncpg.Pool):
    p = photo()
    with pytest.raises(RuleViolation) as caught:
        await store.put(p, uploaded_by="worker-7", grid="32010400100100", at=T0)
    assert caught.value.field == "grid"
    with pytest.raises(RuleViolation) as caught:
        await store.put(p, uploaded_by="worker-7", grid=GRID, at=datetime(2026, 3, 2, 9, 0))  # naive
    assert caught.value.code == "naive_instant"
    with pytest.raises(RuleViolation) as caught:
        await store.put(p, uploaded_by="x" * 129, grid=GRID, at=T0)
    assert caught.value.field == "uploaded_by"
    forged = SanitisedPhoto(content=b"not what was sanitised", media_type=p.media_type, sha256=p.sha256,
                            width=p.width, height=p.height, size=22)
    with pytest.raises(ValueError):
        await store.put(forged, uploaded_by="worker-7", grid=GRID, at=T0)
    assert await rows(pool) == 0
    # the table refuses what the store would never write
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO grid_photos VALUES ($1, 'image/gif', '\\x00'::bytea, 1, 1, 1, 'w', now(), $2)",
            "0" * 64, GRID)
