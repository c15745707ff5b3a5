"""Test images built in memory: orientations, EXIF, HEIC, bombs and damaged files."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image

# Corner colours of an upright test image: a rotated or mirrored result moves them.
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)

# What the camera stored for each EXIF orientation, as the inverse of the transposition that
# makes it upright again (see the EXIF 2.32 orientation table).
_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright(width: int = 1600, height: int = 1000) -> Image.Image:
    """A landscape image with a distinct colour in each corner quadrant."""
    image = Image.new("RGB", (width, height), WHITE)
    half_w, half_h = width // 2, height // 2
    image.paste(RED, (0, 0, half_w, half_h))
    image.paste(GREEN, (half_w, 0, width, half_h))
    image.paste(BLUE, (0, half_h, half_w, height))
    return image


def corners(image: Image.Image) -> tuple[tuple[int, ...], ...]:
    """The colours near the top-left, top-right and bottom-left corners, rounded to 0/255."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    points = [(w // 8, h // 8), (w - w // 8, h // 8), (w // 8, h - h // 8)]
    return tuple(
        tuple(255 if c > 127 else 0 for c in rgb.getpixel(p))
        for p in points  # type: ignore[union-attr]
    )


def exif_bytes(
    orientation: int | None = None,
    *,
    gps: tuple[float, float] | None = None,
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
) -> bytes:
    """An EXIF block with the given tags."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        details = {0x9003: taken}
        if offset:
            details[0x9011] = offset
        exif[0x8769] = details
    if gps:
        lat, lon = gps
        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: _dms(abs(lat)),
            3: "E" if lon >= 0 else "W",
            4: _dms(abs(lon)),
        }
    return exif.tobytes()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return (float(degrees), float(minutes), seconds)


def jpeg(image: Image.Image | None = None, exif: bytes | None = None, quality: int = 90) -> bytes:
    """JPEG bytes of `image` (the upright test image by default)."""
    out = io.BytesIO()
    (image or upright()).save(out, "JPEG", quality=quality, exif=exif or b"")
    return out.getvalue()


def oriented_jpeg(orientation: int) -> bytes:
    """The upright test image as a camera would store it with this EXIF orientation."""
    method = _STORED[orientation]
    image = upright() if method is None else upright().transpose(method)
    return jpeg(image, exif_bytes(orientation))


def png(image: Image.Image | None = None) -> bytes:
    """PNG bytes."""
    out = io.BytesIO()
    (image or upright(400, 250)).save(out, "PNG")
    return out.getvalue()


def webp(image: Image.Image | None = None) -> bytes:
    """WebP bytes."""
    out = io.BytesIO()
    (image or upright(400, 250)).save(out, "WEBP", quality=80)
    return out.getvalue()


def heic(image: Image.Image | None = None) -> bytes:
    """HEIC bytes (pillow-heif's encoder), as iPads send them."""
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    (image or upright(640, 400)).save(out, "HEIF", quality=70)
    return out.getvalue()


def pdf() -> bytes:
    """A one-page PDF."""
    out = io.BytesIO()
    Image.new("RGB", (200, 100), WHITE).save(out, "PDF")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""
    data = png(Image.new("RGB", (8, 8), WHITE))
    ihdr = struct.pack(">II", width, height) + data[24:29]
    chunk = b"IHDR" + ihdr
    return (
        data[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
    )
