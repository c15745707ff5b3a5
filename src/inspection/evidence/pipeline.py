"""The photo pipeline: recognise a file from its bytes, check it, read its EXIF, derive previews.

Everything here is synchronous CPU work (Pillow); `evidence.service` runs it through
`anyio.to_thread`. Speed and memory come from three choices, measured in
docs/benchmarks.md:

- the pixel count is checked from the header, before anything is decoded, so a decompression bomb
  costs a fraction of a millisecond and no memory;
- JPEGs are decoded in draft mode (DCT scaling) at the smallest scale that still covers the
  1280 px preview, instead of fully decoding 12 MP to throw most of it away;
- the EXIF orientation is applied after shrinking, to the small image.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any

import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

from inspection.errors import Rejected, UnsupportedMediaType

pillow_heif.register_heif_opener()
log = logging.getLogger("inspection.evidence")

MAX_PIXELS = 60_000_000
PREVIEW_SIDE = 1280
THUMBNAIL_SIDE = 320
JPEG_QUALITY = 85
DERIVED_TYPE = "image/jpeg"
# Pillow raises DecompressionBombError itself above twice its limit and merely warns between one and
# two times; `inspect_image` rejects everything above the limit explicitly, so the warning is noise.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# Truncated files must fail, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

JPEG, PNG, WEBP, HEIC, PDF = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "application/pdf",
)
_PILLOW_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", HEIC: "HEIF"}
# The file name extension of each stored type, for names the client did not give.
EXTENSION = {JPEG: ".jpg", PNG: ".png", WEBP: ".webp", HEIC: ".heic", PDF: ".pdf"}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
# How many first bytes `sniff` needs (the spool keeps them as they arrive).
SNIFF_BYTES = 64

# EXIF tags (TIFF/EXIF 2.32).
_ORIENTATION, _MAKE, _MODEL = 0x0112, 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes; `UnsupportedMediaType` for anything else.

    Names and declared types are never trusted: a PNG named `.jpg` is a PNG, and an executable
    named `.jpg` is refused.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {
            head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)
        }
        if brands & _HEIF_BRANDS and b"avif" not in brands:
            return HEIC
    if head.startswith(b"%PDF-"):
        return PDF
    raise UnsupportedMediaType(
        "accepted: JPEG, PNG, WebP and HEIC/HEIF photos, and PDF documents"
        " (recognised from the file's bytes)"
    )


@dataclass(frozen=True, slots=True)
class Photo:
    """What the pipeline learnt from an image and the derived JPEGs."""

    width: int
    height: int
    taken_at: datetime | None
    gps_lat: float | None
    gps_lon: float | None
    camera_make: str | None
    camera_model: str | None
    preview: bytes
    thumbnail: bytes


def check_pdf(file: IO[bytes], size: int) -> None:
    """Refuse a PDF whose end is missing (a truncated upload)."""
    file.seek(max(0, size - 1024))
    if b"%%EOF" not in file.read():
        raise Rejected.field("file", "the PDF is truncated or damaged (no end-of-file marker)")


def process_image(file: IO[bytes], content_type: str, zone: timezone | Any) -> Photo:
    """Check an image fully and derive its preview and thumbnail; `Rejected` if it is damaged.

    `zone` interprets an EXIF time written without an offset (cameras write local time).
    """
    file.seek(0)
    try:
        with Image.open(file, formats=[_PILLOW_FORMAT[content_type]]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _too_many_pixels(width, height)
            exif = image.getexif()
            orientation = _orientation(exif) if content_type != HEIC else 1
            facts = _exif_facts(exif, zone)
            if content_type == JPEG:
                # DCT scaling: decode at 1/2, 1/4 or 1/8 while still covering the preview size.
                image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
            image.load()
            preview = _flatten(image)
    except Image.DecompressionBombError as exc:
        raise Rejected.field("file", f"the image has too many pixels ({exc})") from None
    except Rejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Rejected.field("file", f"the image is damaged or truncated ({exc})") from None
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        preview = preview.transpose(method)
    thumbnail = preview.copy()
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Photo(
        width=width,
        height=height,
        preview=_jpeg(preview),
        thumbnail=_jpeg(thumbnail),
        **facts,
    )


def _too_many_pixels(width: int, height: int) -> Rejected:
    return Rejected.field(
        "file", f"the image has {width}x{height} pixels; at most {MAX_PIXELS:,} are accepted"
    )


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency onto white, CMYK/palette/16-bit converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I;16") or image.mode == "I":
        return image.point(lambda v: v / 256).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image.copy()


def _jpeg(image: Image.Image) -> bytes:
    # No exif/icc/comment arguments: the derived files carry no metadata (GPS, serial numbers).
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return out.getvalue()


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _text(value: Any, limit: int = 100) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = "".join(c for c in value if c.isprintable()).strip()
    return cleaned[:limit] or None


def _exif_facts(exif: Image.Exif, zone: Any) -> dict[str, Any]:
    """Taken-at, GPS and camera; a malformed tag is ignored, never fatal."""
    facts: dict[str, Any] = {
        "taken_at": None,
        "gps_lat": None,
        "gps_lon": None,
        "camera_make": _text(exif.get(_MAKE)),
        "camera_model": _text(exif.get(_MODEL)),
    }
    try:
        details = exif.get_ifd(_EXIF_IFD)
        facts["taken_at"] = _taken_at(
            details.get(_DATETIME_ORIGINAL), details.get(_OFFSET_TIME_ORIGINAL), zone
        )
    except Exception:  # a camera's bad EXIF must not refuse the photo
        facts["taken_at"] = None
    try:
        gps = exif.get_ifd(_GPS_IFD)
        lat = _degrees(gps.get(2), gps.get(1), {"N": 1, "S": -1})
        lon = _degrees(gps.get(4), gps.get(3), {"E": 1, "W": -1})
        if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
            facts["gps_lat"], facts["gps_lon"] = lat, lon
    except Exception as exc:  # same: GPS is a bonus, not a requirement
        log.debug("ignoring unreadable GPS EXIF: %s", exc)
    return facts


def _taken_at(raw: Any, offset: Any, zone: Any) -> datetime | None:
    text = _text(raw, 40)
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007 - zone below
    except ValueError:
        return None
    offset_text = _text(offset, 10)
    if offset_text and len(offset_text) == 6 and offset_text[0] in "+-":
        try:
            sign = 1 if offset_text[0] == "+" else -1
            hours, minutes = int(offset_text[1:3]), int(offset_text[4:6])
            return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
        except ValueError:
            pass
    return moment.replace(tzinfo=zone)


def _degrees(value: Any, ref: Any, signs: dict[str, int]) -> float | None:
    """Degrees, minutes, seconds (rationals) and a hemisphere letter to signed decimal degrees."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    hemisphere = _text(ref, 2)
    sign = signs.get((hemisphere or "")[:1].upper())
    if sign is None:
        return None
    parts = [float(v) for v in value]
    if any(math.isnan(p) or p < 0 for p in parts):  # NaN: a zero denominator
        return None
    return sign * round(parts[0] + parts[1] / 60 + parts[2] / 3600, 7)
