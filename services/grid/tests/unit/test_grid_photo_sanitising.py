"""The grid service's photo sanitising: what is accepted (sniffed from the bytes), what is
refused (and how it is answered), and that nothing but the pixels survives. No I/O: every
image is made in memory with Pillow."""
from __future__ import annotations

import inspect
import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from civicgrid_common.problems import Refusal, RuleViolation

from civicgrid_grid.adapters.photos import (
    MAX_PHOTO_BYTES,
    MAX_PHOTO_PIXELS,
    PhotoRefused,
    SanitisedPhoto,
    sanitise,
)

MAKE, MODEL, SERIAL = "SecretPhoneMaker", "SecretModel X9", "SN-0042-LEAK"
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="32,1.8N"/></rdf:RDF></x:xmpmeta>'
       b'<?xpacket end="w"?>')
# Words of metadata that must not appear anywhere in a sanitised file.
LEAKS = (MAKE.encode(), MODEL.encode(), SERIAL.encode(), b"Exif\x00\x00", b"ns.adobe.com", b"xpacket",
         b"secret comment", b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"ICC_PROFILE", b"sRGB built-in")

GPS_IFD, EXIF_IFD = 0x8825, 0x8769
MAKE_TAG, MODEL_TAG, ORIENTATION_TAG, SERIAL_TAG = 0x010F, 0x0110, 0x0112, 0xA431


def exif(orientation: int | None = None) -> Image.Exif:
    ex = Image.Exif()
    ex[MAKE_TAG], ex[MODEL_TAG] = MAKE, MODEL
    if orientation is not None:
        ex[ORIENTATION_TAG] = orientation
    gps = ex.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (32.0, 1.0, 48.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (118.0, 47.0, 24.0)  # GPSLongitudeRef, GPSLongitude
    ex.get_ifd(EXIF_IFD)[SERIAL_TAG] = SERIAL  # BodySerialNumber
    return ex


def two_colours(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: shows which way the photo was turned."""
    im = Image.new(mode, size, (255, 0, 0, 255)[: len(mode)])
    im.paste((0, 0, 255, 255)[: len(mode)], (size[0] // 2, 0, size[0], size[1]))
    return im


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_jpeg(orientation: int | None = None, size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(two_colours(size), "JPEG", quality=95, exif=exif(orientation), comment=b"secret comment",
                  xmp=XMP, icc_profile=srgb_icc())


def reopen(photo: SanitisedPhoto) -> Image.Image:
    im = Image.open(io.BytesIO(photo.content))
    im.load()
    return im


def assert_clean(photo: SanitisedPhoto) -> None:
    im = reopen(photo)
    assert dict(im.getexif()) == {}
    assert im.getexif().get_ifd(GPS_IFD) == {}
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "Comment", "Author", "photoshop",
                "adobe", "mp", "mpoffset"):
        assert key not in im.info, key
    assert getattr(im, "text", {}) == {}
    for leak in LEAKS:
        assert leak not in photo.content, leak


def refusal(data: bytes, **limits) -> PhotoRefused:
    with pytest.raises(PhotoRefused) as caught:
        sanitise(data, **limits)
    exc = caught.value
    assert isinstance(exc, RuleViolation) and exc.refusal is Refusal.INVALID and exc.field == "photo"
    return exc


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a canvas of width × height (no pixel data to speak of)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------- accepted and stripped


def test_a_camera_jpeg_loses_gps_device_comment_xmp_and_icc_and_keeps_its_size():
    data = camera_jpeg()
    source = Image.open(io.BytesIO(data))
    assert source.getexif()[MAKE_TAG] == MAKE and source.getexif().get_ifd(GPS_IFD)  # the fixture carries them
    assert "icc_profile" in source.info and b"secret comment" in data and b"xpacket" in data

    photo = sanitise(data)

    assert (photo.media_type, photo.width, photo.height) == ("image/jpeg", 64, 48)
    assert photo.size == len(photo.content)
    assert reopen(photo).format == "JPEG" and reopen(photo).size == (64, 48)
    assert_clean(photo)


@pytest.mark.parametrize(("orientation", "size", "top_left", "bottom_right"), [
    (1, (64, 48), "red", "blue"),
    (3, (64, 48), "blue", "red"),  # turned 180°
    (6, (48, 64), "red", "blue"),  # shown turned 90° clockwise: the left half is on top
    (8, (48, 64), "blue", "red"),  # 90° counter-clockwise: the right half is on top
])
def test_the_exif_orientation_is_applied_before_it_is_dropped(orientation, size, top_left, bottom_right):
    photo = sanitise(camera_jpeg(orientation))

    im = reopen(photo).convert("RGB")
    assert (photo.width, photo.height) == im.size == size
    assert ORIENTATION_TAG not in im.getexif()

    def colour(xy: tuple[int, int]) -> str:
        r, _, b = im.getpixel(xy)
        return "red" if r > 200 and b < 60 else "blue" if b > 200 and r < 60 else f"{r},{b}"

    assert colour((2, 2)) == top_left
    assert colour((im.width - 3, im.height - 3)) == bottom_right


def test_a_png_loses_its_text_chunks_exif_and_icc_and_keeps_its_transparency():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "grid worker 7")
    info.add_text("Comment", "secret comment", zip=True)  # zTXt
    info.add_itxt("Description", "secret comment", lang="zh", tkey="说明")  # iTXt
    im = two_colours(mode="RGBA")
    im.putpixel((0, 0), (0, 0, 0, 0))
    data = encode(im, "PNG", pnginfo=info, exif=exif(), icc_profile=srgb_icc())
    source = Image.open(io.BytesIO(data))
    assert source.text and b"tEXt" in data and b"eXIf" in data and b"iCCP" in data

    photo = sanitise(data)

    assert (photo.media_type, photo.width, photo.height) == ("image/png", 64, 48)
    out = reopen(photo)
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0 and out.getpixel((10, 10)) == (255, 0, 0, 255)
    assert_clean(photo)


def test_a_palette_png_with_transparency_stays_a_transparent_png():
    im = Image.new("P", (20, 10), 0)
    im.putpalette([255, 255, 255, 10, 20, 30] + [0] * 762)
    im.paste(1, (10, 0, 20, 10))
    photo = sanitise(encode(im, "PNG", transparency=0))
    out = reopen(photo).convert("RGBA")
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((15, 5)) == (10, 20, 30, 255)
    assert_clean(photo)


def test_a_webp_loses_its_exif_and_xmp():
    data = encode(two_colours(), "WEBP", quality=95, exif=exif(), xmp=XMP, icc_profile=srgb_icc())
    assert b"EXIF" in data and b"XMP " in data

    photo = sanitise(data)

    assert (photo.media_type, photo.width, photo.height) == ("image/webp", 64, 48)
    assert reopen(photo).format == "WEBP"
    assert_clean(photo)
    assert b"EXIF" not in photo.content and b"XMP " not in photo.content and b"ICCP" not in photo.content


def test_a_multi_picture_jpeg_from_a_phone_keeps_only_its_first_picture():
    second = Image.new("RGB", (16, 16), (0, 255, 0))
    data = encode(two_colours(), "MPO", save_all=True, append_images=[second], exif=exif())
    assert Image.open(io.BytesIO(data)).format == "MPO"

    photo = sanitise(data)

    out = reopen(photo)
    assert (photo.media_type, out.format, out.size) == ("image/jpeg", "JPEG", (64, 48))
    assert getattr(out, "n_frames", 1) == 1 and photo.content.count(b"\xff\xd8") == 1
    assert_clean(photo)


def test_a_cmyk_jpeg_and_a_grey_jpeg_are_kept_as_viewable_jpegs():
    cmyk = sanitise(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert reopen(cmyk).mode == "RGB"
    r, g, b = reopen(cmyk).getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60
    grey = sanitise(encode(Image.new("L", (8, 8), 128), "JPEG", exif=exif()))
    assert reopen(grey).mode == "L"
    assert_clean(grey)


def test_an_unreadable_icc_profile_is_dropped_and_the_pixels_kept():
    photo = sanitise(encode(two_colours(), "JPEG", icc_profile=b"not a profile" * 10))
    assert (photo.width, photo.height) == (64, 48)
    assert_clean(photo)


def test_the_type_is_sniffed_from_the_bytes_and_nothing_else():
    # No file name and no Content-Type is taken: a PNG sent as "IMG_0001.JPG" is a PNG.
    assert list(inspect.signature(sanitise).parameters) == ["data", "max_bytes", "max_pixels"]
    png_named_jpg = encode(two_colours(), "PNG")
    assert sanitise(png_named_jpg).media_type == "image/png"
    assert sanitise(bytearray(encode(two_colours(), "JPEG"))).media_type == "image/jpeg"
    assert sanitise(memoryview(encode(two_colours(), "WEBP"))).media_type == "image/webp"


def test_the_same_upload_twice_gives_the_same_address():
    data = camera_jpeg(6)
    first, second = sanitise(data), sanitise(data)
    assert first == second
    import hashlib

    assert first.sha256 == hashlib.sha256(first.content).hexdigest()
    assert len(first.sha256) == 64 and first.sha256 == first.sha256.lower()
    assert sanitise(encode(two_colours(), "PNG")).sha256 == sanitise(encode(two_colours(), "PNG")).sha256


def test_metadata_does_not_change_the_address():
    # Two uploads of the same pixels with different EXIF are the same photo once stripped.
    plain = encode(two_colours(), "PNG")
    tagged = encode(two_colours(), "PNG", exif=exif(), pnginfo=PngImagePlugin.PngInfo())
    assert plain != tagged
    assert sanitise(plain).sha256 == sanitise(tagged).sha256


# ---------------------------------------------------------------------------- refused


@pytest.mark.parametrize(("data", "what"), [
    (encode(Image.new("P", (8, 8)), "GIF"), "GIF"),
    (b"hello, this is not a photo\n", "text"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF/HEIC"),
    (encode(Image.new("RGB", (8, 8)), "TIFF"), "TIFF"),
    (encode(Image.new("RGB", (8, 8)), "BMP"), "BMP"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "XML/HTML/SVG"),
    (b"\x00\x01\x02\x03\xfe\xff" * 10, "unknown data"),
])
def test_other_types_are_refused_naming_what_they_are(data, what):
    exc = refusal(data)
    assert exc.code == "photo_type_refused"
    assert exc.extra["detected"] == what and what in exc.message
    problem = exc.problem()
    assert problem.status == 422 and problem.type == "/problems/validation-error"
    assert problem.extra["code"] == "photo_type_refused"
    assert problem.extra["errors"][0]["pointer"] == "#/photo"


def test_a_truncated_jpeg_is_unreadable():
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")
    assert refusal(data[: len(data) // 2]).code == "photo_unreadable"


@pytest.mark.parametrize("data", [
    b"",
    b"\xff\xd8\xff\xe0" + b"\x00" * 100,  # a JPEG signature and nothing readable
    b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
    b"RIFF\x10\x00\x00\x00WEBPVP8 garbage",
])
def test_corrupt_photos_are_unreadable(data):
    assert refusal(data).code == "photo_unreadable"


def test_a_png_with_a_broken_checksum_is_unreadable():
    data = bytearray(encode(Image.effect_noise((64, 64), 64), "PNG"))
    at = data.index(b"IDAT") + 20
    data[at] ^= 0xFF
    assert refusal(bytes(data)).code == "photo_unreadable"


def test_more_than_8_mib_is_refused_before_it_is_read_and_answered_413():
    assert MAX_PHOTO_BYTES == 8 * 1024 * 1024
    exc = refusal(b"\xff\xd8\xff" + b"\x00" * MAX_PHOTO_BYTES)
    assert exc.code == "photo_too_large" and exc.extra["max_bytes"] == MAX_PHOTO_BYTES
    problem = exc.problem()
    assert problem.status == 413 and problem.type == "/problems/request-too-large"
    assert problem.extra["code"] == "photo_too_large" and problem.extra["max_bytes"] == MAX_PHOTO_BYTES
    assert problem.extra["errors"][0]["pointer"] == "#/photo"
    # exactly the limit is still read (and here refused for what it is, not for its size)
    assert refusal(b"\xff\xd8\xff" + b"\x00" * (MAX_PHOTO_BYTES - 3)).code == "photo_unreadable"


def test_the_byte_limit_is_a_parameter():
    data = encode(two_colours(), "PNG")
    assert refusal(data, max_bytes=len(data) - 1).code == "photo_too_large"
    assert sanitise(data, max_bytes=len(data)).media_type == "image/png"


def test_a_tiny_png_declaring_a_gigantic_canvas_is_refused_as_a_bomb():
    data = png_declaring(100_000, 100_000)  # 10 gigapixels: Pillow's own bomb check fires on open
    assert len(data) < 200
    exc = refusal(data)
    assert exc.code == "photo_too_many_pixels" and exc.extra["max_pixels"] == MAX_PHOTO_PIXELS


def test_a_canvas_over_40_megapixels_is_refused_before_decoding():
    assert MAX_PHOTO_PIXELS == 40_000_000
    exc = refusal(png_declaring(8000, 6000))  # 48 MP: under Pillow's limit, over ours
    assert exc.code == "photo_too_many_pixels" and "8000 × 6000" in exc.message
    assert refusal(png_declaring(8000, 5000)).code == "photo_unreadable"  # 40 MP is allowed: read, and empty


def test_the_pixel_limit_is_a_parameter():
    data = encode(two_colours((64, 48)), "JPEG")
    exc = refusal(data, max_pixels=64 * 48 - 1)
    assert exc.code == "photo_too_many_pixels" and exc.extra["max_pixels"] == 64 * 48 - 1
    assert sanitise(data, max_pixels=64 * 48).width == 64


def test_only_bytes_are_sanitised():
    with pytest.raises(TypeError):
        sanitise("not bytes")  # type: ignore[arg-type]
