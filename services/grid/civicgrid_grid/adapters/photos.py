"""The grid workers' on-site photos: made safe to keep and to show (`sanitise`), then stored
once by their content address (`PhotoStore`, the `grid_photos` table).

**What a photo is decided from its bytes only.** A phone's file name and Content-Type are
ignored: the signature says JPEG, PNG or WebP (anything else is refused, naming what it looks
like), and Pillow must then open it as that format; it is opened with those plugins only, so
no other parser of Pillow's ever sees the upload.

**Bounded before it is decoded.** At most `MAX_PHOTO_BYTES` (8 MiB) in, at most
`MAX_PHOTO_PIXELS` (40 megapixels) declared in the header, checked before a pixel is decoded
(a small file declaring a huge canvas is a decompression bomb). Pillow's own global limit
(`Image.MAX_IMAGE_PIXELS`) is left as it is and only backs ours up: changing a process-wide
setting per call would race other threads.

**Nothing but pixels leaves.** The EXIF orientation is applied first, so the photo still
looks the way it was taken; then the pixels are copied into a new image that carries no
metadata at all and encoded afresh: no EXIF (so no GPS position, no device make, model or
serial, no capture time), no XMP, no IPTC, no JPEG comments or APPn segments, no PNG text
chunks (tEXt, zTXt, iTXt, eXIf), no appended data (a "motion photo"'s video, a second MPO
frame). An ICC profile is not kept either: it can name the device and its maker and is one
more parser for every viewer; instead the pixels are converted from it to sRGB (what a viewer
assumes of an untagged image), so a Display P3 photo keeps its colours. A profile that cannot
be read is dropped and the pixels are kept as they are. Only the first frame of an animated
PNG or WebP is kept.

**Content-addressed.** `sha256` is over the sanitised bytes, and the encoders are
deterministic, so the same upload gives the same address; `PhotoStore.put` stores a photo
once (the first upload's uploader, grid and instant are kept).

`sanitise` is pure and CPU-bound (a 40-megapixel photo takes a second or so): call it from a
route through `asyncio.to_thread`. The route also needs a request-size limit above
`MAX_PHOTO_BYTES` (the platform's default `max_request_bytes` is 1 MiB).
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Iterable

import asyncpg
from PIL import Image, ImageCms, ImageOps

from civicgrid_common.db import install_schema
from civicgrid_common.problems import REQUEST_TOO_LARGE, Problem

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.rules import InvalidInput, subject, utc

MAX_PHOTO_BYTES = 8 * 1024 * 1024  # 8 MiB of upload
MAX_PHOTO_PIXELS = 40_000_000  # 40 megapixels: more than any phone's main camera writes by default
# What a sanitised photo may grow to: a re-encoding is rarely larger than its source, but a
# PNG or WebP written by another encoder can be; beyond this the store would be amplified.
MAX_STORED_BYTES = 2 * MAX_PHOTO_BYTES
MAX_LOOKUP = 100  # digests asked about at once
JPEG_QUALITY = 90
WEBP_QUALITY = 90

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
MEDIA_TYPES = (JPEG, PNG, WEBP)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# The codes of the refusals (all name the field "photo").
TOO_LARGE = "photo_too_large"
TYPE_REFUSED = "photo_type_refused"
TOO_MANY_PIXELS = "photo_too_many_pixels"
UNREADABLE = "photo_unreadable"


class PhotoRefused(InvalidInput):
    """An upload that is not a photo the grid service keeps: 422 `validation-error` naming the
    field `photo`, with `code` saying why.

    `photo_too_large` is answered `413 request-too-large` instead (with `max_bytes`, as the
    platform's own body limit answers): a RuleViolation's kinds have no 413 and the catalogue's
    type fits exactly, so this class builds that problem itself; `refusal` stays INVALID for
    code that sorts refusals by kind."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(code, message, field="photo", **extra)

    def problem(self) -> Problem:
        answer = super().problem()
        if self.code == TOO_LARGE:
            return Problem(REQUEST_TOO_LARGE, answer.detail, **answer.extra)
        return answer


@dataclass(frozen=True)
class SanitisedPhoto:
    content: bytes
    media_type: str  # image/jpeg, image/png or image/webp
    sha256: str  # lower-case hex SHA-256 of `content`: the photo's address
    width: int
    height: int
    size: int  # len(content)


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    media_type: str
    content: bytes
    size: int
    width: int
    height: int
    uploaded_by: str
    uploaded_at: datetime
    grid: str


# ---------------------------------------------------------------------------- sniffing

# Pillow format -> what is written back; MPO is the multi-picture JPEG many phones write.
_ENCODE_AS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
_MEDIA_TYPE = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP}
_PLUGINS = ["JPEG", "PNG", "WEBP"]  # MPO is opened by the JPEG plugin


def _accepted_kind(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def describe(data: bytes) -> str:
    """What refused bytes look like, for the refusal's message (a fixed vocabulary: nothing of
    the upload is echoed)."""
    head = data[:64]
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:5] == b"%PDF-":
        return "PDF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] == b"8BPS":
        return "PSD"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIF/HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        return "ISO media (MP4/MOV)"
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "JPEG 2000"
    if head[:4] == b"PK\x03\x04":
        return "ZIP"
    if head[:4] == b"RIFF":
        return "RIFF (not WebP)"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] == b"<":
        return "XML/HTML/SVG"
    try:
        sample = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown data"
    if sample and all(c.isprintable() or c in "\t\r\n" for c in sample):
        return "text"
    return "unknown data"


# ---------------------------------------------------------------------------- sanitising


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """The pixels converted from their ICC profile to sRGB; unchanged if the profile is sRGB
    already, cannot be read or does not fit the mode."""
    if im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode != "CMYK" and ImageCms.getProfileDescription(source).strip().startswith("sRGB"):
            return im
        converted = ImageCms.profileToProfile(
            im, source, ImageCms.createProfile("sRGB"),
            renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGBA" if im.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im
    return converted if converted is not None else im


def _output_mode(im: Image.Image, encode_as: str) -> str:
    alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    gray = im.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
    if encode_as == "JPEG":
        return "L" if gray else "RGB"
    if encode_as == "PNG" and gray:
        return "LA" if alpha else "L"
    return "RGBA" if alpha else "RGB"


def sanitise(data: bytes, *, max_bytes: int = MAX_PHOTO_BYTES, max_pixels: int = MAX_PHOTO_PIXELS) -> SanitisedPhoto:
    """The upload as a photo fit to keep: sniffed, bounded, oriented, stripped of all metadata
    and re-encoded in its own format. Raises `PhotoRefused` (field `photo`) with `code`
    photo_too_large, photo_type_refused, photo_too_many_pixels or photo_unreadable."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("a photo is bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise PhotoRefused(TOO_LARGE, f"a photo is at most {max_bytes} bytes, this one is {len(data)}",
                           max_bytes=max_bytes)
    if not data:
        raise PhotoRefused(UNREADABLE, "the photo is empty")
    kind = _accepted_kind(data)
    if kind is None:
        what = describe(data)
        raise PhotoRefused(TYPE_REFUSED, f"a photo must be JPEG, PNG or WebP; this is {what}", detected=what)

    def too_many(width: int, height: int) -> PhotoRefused:
        return PhotoRefused(TOO_MANY_PIXELS, f"a photo has at most {max_pixels} pixels; this one declares "
                            f"{width} × {height}", max_pixels=max_pixels)

    def unreadable() -> PhotoRefused:
        return PhotoRefused(UNREADABLE, f"the photo cannot be read as {kind}: it is truncated or corrupt")

    try:
        # 1. The header: the format and the canvas, before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=_PLUGINS) as probe:
            if _ENCODE_AS[probe.format or ""] != _ENCODE_AS[kind]:
                raise unreadable()
            if probe.width * probe.height > max_pixels:
                raise too_many(probe.width, probe.height)
            probe.verify()  # structure and checksums (PNG's CRCs); the image is unusable afterwards
        # 2. The pixels: open again (verify consumed the first), decode all of them.
        with Image.open(io.BytesIO(data), formats=_PLUGINS) as im:
            if im.width * im.height > max_pixels:
                raise too_many(im.width, im.height)
            im.load()
            encode_as = _ENCODE_AS[im.format or ""]
            icc = im.info.get("icc_profile")
            try:
                oriented = ImageOps.exif_transpose(im)
            except Exception:  # noqa: BLE001 - an unreadable EXIF block: keep the pixels as stored
                oriented = im.copy()
    except PhotoRefused:
        raise
    except Image.DecompressionBombError:
        raise PhotoRefused(TOO_MANY_PIXELS, f"a photo has at most {max_pixels} pixels; this one declares "
                           "far more", max_pixels=max_pixels) from None
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - Pillow reports damage as OSError, SyntaxError, ValueError, EOFError, ...
        raise unreadable() from None

    pixels = _to_srgb(oriented, icc) if icc else oriented
    mode = _output_mode(pixels, encode_as)
    if pixels.mode != mode:
        pixels = pixels.convert(mode)
    # A new image holding nothing but the pixels: no info, no EXIF, no palette of the source's.
    clean = Image.new(mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    if encode_as == "JPEG":
        clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif encode_as == "PNG":
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    content = out.getvalue()
    if len(content) > MAX_STORED_BYTES:
        raise PhotoRefused(TOO_LARGE, f"the photo re-encodes to more than {MAX_STORED_BYTES} bytes",
                           max_bytes=max_bytes)
    return SanitisedPhoto(content=content, media_type=_MEDIA_TYPE[encode_as],
                          sha256=hashlib.sha256(content).hexdigest(), width=clean.width, height=clean.height,
                          size=len(content))


# ---------------------------------------------------------------------------- the store

GRID_PHOTOS_DDL = f"""
CREATE TABLE IF NOT EXISTS grid_photos (
    sha256      text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{{64}}$'),
    media_type  text        NOT NULL CHECK (media_type IN ('{JPEG}', '{PNG}', '{WEBP}')),
    content     bytea       NOT NULL,
    size        integer     NOT NULL CHECK (size = octet_length(content) AND size <= {MAX_STORED_BYTES}),
    width       integer     NOT NULL CHECK (width > 0),
    height      integer     NOT NULL CHECK (height > 0),
    uploaded_by text        NOT NULL CHECK (length(uploaded_by) BETWEEN 1 AND 128),
    uploaded_at timestamptz NOT NULL,
    grid        text        NOT NULL CHECK (grid ~ '^[0-9]{{15}}$')
);
-- Every grid a photo was uploaded for: the same bytes uploaded in two grids are stored once,
-- and those over either grid may see them.
CREATE TABLE IF NOT EXISTS grid_photo_uploads (
    sha256 text NOT NULL REFERENCES grid_photos (sha256),
    grid   text NOT NULL CHECK (grid ~ '^[0-9]{{15}}$'),
    PRIMARY KEY (sha256, grid)
);
"""


async def install(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [GRID_PHOTOS_DDL])


def _digest(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidInput("invalid_photo", "a photo is named by the lower-case hex SHA-256 of its bytes",
                           field=field)
    return value


class PhotoStore:
    """Sanitised photos by their SHA-256, each stored once. Photos are never changed; the
    events of incidents and reports name them by digest."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def install(self) -> None:
        await install(self.pool)

    async def put(self, photo: SanitisedPhoto, *, uploaded_by: str, grid: str, at: datetime) -> str:
        """Store the photo unless it is there already; its digest either way."""
        if not isinstance(photo, SanitisedPhoto):
            raise TypeError("only a SanitisedPhoto (from sanitise) is stored")
        _digest(photo.sha256, "photo")
        if (photo.media_type not in MEDIA_TYPES or photo.size != len(photo.content)
                or photo.size > MAX_STORED_BYTES or hashlib.sha256(photo.content).hexdigest() != photo.sha256
                or photo.width <= 0 or photo.height <= 0):
            raise ValueError("the photo does not match its digest, size or type: store what sanitise made")
        by = subject(uploaded_by, "uploaded_by")
        code = GridCode.parse(grid, "grid").value
        when = utc(at, "at")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO grid_photos (sha256, media_type, content, size, width, height, uploaded_by,
                                            uploaded_at, grid)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT (sha256) DO NOTHING""",
                photo.sha256, photo.media_type, photo.content, photo.size, photo.width, photo.height, by, when, code)
            await conn.execute("INSERT INTO grid_photo_uploads VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               photo.sha256, code)
        return photo.sha256

    async def grids(self, sha256: str) -> list[str]:
        """Every grid the photo was uploaded for (the first uploader's first)."""
        rows = await self.pool.fetch("SELECT grid FROM grid_photo_uploads WHERE sha256 = $1 ORDER BY grid", sha256)
        return [r["grid"] for r in rows]

    async def get(self, sha256: str) -> StoredPhoto | None:
        """The photo of this digest; None for an unknown digest and for anything that is not one."""
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            return None
        row = await self.pool.fetchrow(
            "SELECT sha256, media_type, content, size, width, height, uploaded_by, uploaded_at, grid "
            "FROM grid_photos WHERE sha256 = $1", sha256)
        if row is None:
            return None
        return StoredPhoto(**{**dict(row), "content": bytes(row["content"])})

    async def missing(self, digests: Iterable[str]) -> set[str]:
        """The digests of those photos that are not stored (empty when all are). At most
        MAX_LOOKUP at once; a malformed digest is refused as `photos/<i>`."""
        asked = list(islice(iter(digests), MAX_LOOKUP + 1))
        if len(asked) > MAX_LOOKUP:
            raise InvalidInput("too_many_photos", f"at most {MAX_LOOKUP} photos at once", field="photos")
        wanted = {_digest(d, f"photos/{i}") for i, d in enumerate(asked)}
        if not wanted:
            return set()
        rows = await self.pool.fetch("SELECT sha256 FROM grid_photos WHERE sha256 = ANY($1::text[])",
                                     sorted(wanted))
        return wanted - {r["sha256"] for r in rows}
