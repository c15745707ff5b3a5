"""The photo pipeline: recognise a file from its bytes, check it, read its EXIF, derive previews.

Everything here is synchronous CPU work (Pillow); `evidence.service` runs it through
`anyio.to_thread`, inside the process's decode memory budget (`evidence.budget`). Speed and
memory come from these choices, measured in docs/benchmarks.md:

- the pixel count is checked from the header, before anything is decoded, so a decompression bomb
  costs a fraction of a millisecond and no memory;
- the memory an image's processing will need at its peak is estimated from the header too
  (`read_header`, `estimate_memory`), so that the budget can admit it, queue it or refuse it
  before a pixel is decoded;
- JPEGs are decoded in draft mode (DCT scaling) at the smallest scale that still covers the
  1280 px preview, instead of fully decoding 12 MP to throw most of it away;
- formats without a scaled decoder (PNG, WebP, HEIC) are decoded once at full size and shrunk
  at once, band by band, into a copy at most twice the preview's size; the full-size image is
  freed before the preview is made, so the peak is one full decode plus one small copy. Every
  conversion (transparency onto white, palette, 16-bit) is done per band, never on a full-size
  copy;
- WebP and HEIC are decoded straight into a buffer (libwebp, libheif) instead of through
  Pillow's plugins, which copy the decoded frame once more into a Pillow image;
- the EXIF orientation is applied after shrinking, to the small image.
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Protocol, cast

import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

try:
    from PIL import _webp
except ImportError:  # a Pillow built without libwebp: its plugin cannot read WebP either
    _webp = None  # type: ignore[assignment]

from inspection.errors import Rejected, UnsupportedMediaType

pillow_heif.register_heif_opener()
log = logging.getLogger("inspection.evidence")

MAX_PIXELS = 60_000_000
PREVIEW_SIDE = 1280
THUMBNAIL_SIDE = 320
JPEG_QUALITY = 85
DERIVED_TYPE = "image/jpeg"
# Pillow raises DecompressionBombError itself above twice its limit and merely warns between one and
# two times; `read_header` and `process_image` reject everything above the limit explicitly, so
# the warning is noise.
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
# What a damaged file makes Pillow, libwebp or libheif raise.
_DAMAGED = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)

# Shrinking before the preview: Image.thumbnail's own two steps (an integer box reduction while
# the image stays at least REDUCING_GAP times the target, then Lanczos), so previews come out
# exactly as `thumbnail` makes them, but with the reduction done band by band.
REDUCING_GAP = 2.0
# Rows of a band: about this many pixels (4 MiB as RGB), a whole number of reduction blocks.
BAND_PIXELS = 1 << 20
# Bytes per pixel of Pillow's image memory: RGB takes 4 (stored as RGBX), so do LA and PA.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_WIDE_PIXEL = 4  # every other mode Pillow decodes to (RGB, RGBA, LA, PA, CMYK, YCbCr, I, F)
# What `estimate_memory` adds for everything not proportional to the pixels: the libraries'
# tables and buffers, EXIF, Python objects. Measured below 3 MiB (tests/test_decode_budget.py).
FIXED_OVERHEAD = 8 * 1024 * 1024

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


# --- what an image will cost ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an image's header says, before a pixel is decoded: enough to know the memory that
    processing it will take (`estimate_memory`)."""

    content_type: str
    # As stored (before the EXIF orientation).
    width: int
    height: int
    # The decoded image: Pillow's mode (for WebP and HEIC, the decoder's output) and its size,
    # smaller than the stored one when a JPEG is decoded with DCT scaling (draft mode).
    mode: str
    decoded_width: int
    decoded_height: int
    file_size: int
    # JPEG: the bytes of DCT coefficients libjpeg keeps for the whole image while it decodes a
    # progressive or multi-scan file, at full size whatever the scale (0 for a baseline file).
    jpeg_coefficients: int = 0
    # HEIC: bytes per pixel of the decoder's planes (luma, chroma, alpha), see `_heif_planes`.
    heif_planes: float = 0.0

    @property
    def peak_bytes(self) -> int:
        """The estimated peak of processing this image (`estimate_memory(self).total`)."""
        return estimate_memory(self).total


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """The bytes each step of `process_image` holds at its peak (an upper bound).

    The steps follow each other: the decoder runs (`decode`, at its peak), leaving the decoded
    pixels (`decoded`); these are shrunk band by band into a small RGB copy (`shrunk`, with
    `bands` of work in flight) and freed; the preview is resampled from the small copy
    (`resize`), which is then freed; the preview is turned upright, the thumbnail made and both
    encoded (`finish`). A decoded image that is RGB and small already is used `in_place`,
    without a copy, until the preview is made.
    """

    decode: int
    decoded: int
    shrunk: int
    bands: int
    resize: int
    finish: int
    in_place: bool = False
    overhead: int = FIXED_OVERHEAD

    @property
    def total(self) -> int:
        """The peak: the largest of the steps, plus the fixed overhead."""
        source = self.decoded if self.in_place else self.shrunk
        steps = (
            self.decode,
            self.decoded + self.shrunk + self.bands,
            source + self.resize,
            self.finish,
        )
        return max(steps) + self.overhead


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel that Pillow allocates for an image of `mode`."""
    return _PIXEL_BYTES.get(mode, _WIDE_PIXEL)


def image_bytes(mode: str, width: int, height: int) -> int:
    """Bytes of a Pillow image: its pixels and its table of row pointers."""
    return width * height * pixel_bytes(mode) + height * 8


def estimate_memory(header: ImageHeader) -> MemoryEstimate:
    """The memory `process_image` needs for this image, from its header alone.

    A pure function of the header. tests/test_decode_budget.py checks it against the measured
    peak of every format and mode at several sizes: always above, by a small margin.
    """
    width, height = header.decoded_width, header.decoded_height
    pixels = width * height
    if header.content_type == WEBP:
        # libwebp composes the frame on a canvas and keeps a second one (the previous frame, for
        # animations), then returns a copy: 12 bytes per pixel, and up to one more for its own
        # buffers (a lossless file's rows, an alpha plane); the file is held twice meanwhile.
        decoded = pixels * 4
        decode = 13 * pixels + 2 * header.file_size
    elif header.content_type == HEIC:
        # libheif converts its planes into interleaved RGB(A), rows padded (the buffer we keep);
        # the file is held twice meanwhile (pillow-heif's copy and libheif's).
        decoded = (width * len(header.mode) + 64) * height
        decode = decoded + math.ceil(pixels * header.heif_planes) + 2 * header.file_size
    else:
        decoded = image_bytes(header.mode, width, height)
        # libjpeg's coefficient buffer; PNG's rows in flight (two raw rows of up to 8 bytes).
        decode = decoded + header.jpeg_coefficients + 16 * width
    plan = _Plan.of((width, height))
    in_place = header.content_type in _PILLOW_DECODED and header.mode == "RGB" and plan.in_place
    # A band as read (cropped, or copied out of a buffer: at least 4 bytes a pixel), converted
    # (to RGBA, or 16-bit scaled), flattened onto white, and its reduction.
    rows = min(plan.band_rows(width), height)
    bands = rows * width * (max(pixel_bytes(header.mode), _WIDE_PIXEL) + 3 * _WIDE_PIXEL)
    preview = image_bytes("RGB", *plan.preview)
    # Lanczos resizes horizontally into an intermediate as tall as its source, then vertically.
    resize = image_bytes("RGB", plan.preview[0], plan.shrunk[1]) + preview
    # The preview, its upright copy, the thumbnail's copy; the JPEG encoder's buffers and output.
    finish = 3 * preview + preview // 2
    return MemoryEstimate(
        decode=decode,
        decoded=decoded,
        shrunk=0 if in_place else image_bytes("RGB", *plan.shrunk),
        bands=0 if in_place else bands,
        resize=resize,
        finish=finish,
        in_place=in_place,
    )


def read_header(file: IO[bytes], content_type: str) -> ImageHeader:
    """Open an image and read its header, decoding no pixel; `Rejected` when it is damaged or
    has more than `MAX_PIXELS` pixels."""
    file.seek(0, io.SEEK_END)
    size = file.tell()
    file.seek(0)
    try:
        with Image.open(file, formats=[_PILLOW_FORMAT[content_type]]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _too_many_pixels(width, height)
            coefficients, planes = 0, 0.0
            if content_type == JPEG:
                coefficients = _jpeg_coefficients(image, file)
                # Chooses the DCT scale and the decoded mode; decodes nothing.
                image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
            elif content_type == HEIC:
                planes = _heif_planes(image.info, image.mode)
            return ImageHeader(
                content_type=content_type,
                width=width,
                height=height,
                mode=image.mode,
                decoded_width=image.size[0],
                decoded_height=image.size[1],
                file_size=size,
                jpeg_coefficients=coefficients,
                heif_planes=planes,
            )
    except Image.DecompressionBombError as exc:
        raise Rejected.field("file", f"the image has too many pixels ({exc})") from None
    except Rejected:
        raise
    except _DAMAGED as exc:
        raise Rejected.field("file", f"the image is damaged or truncated ({exc})") from None


def _heif_planes(info: Mapping[Any, Any], mode: str) -> float:
    """Bytes per pixel that libheif needs beside its RGB(A) output: the decoded planes (luma,
    chroma at 4:2:0, 4:2:2 or 4:4:4, alpha; one byte per sample up to 8 bits, two above) twice,
    the HEVC decoder's picture and libheif's copy of it, and the decoder's per-block data.
    Measured: 6.7-7.4 bytes per pixel in all for 8-bit 4:2:0 RGB, 9.0 for 4:4:4."""
    chroma = {420: 0.5, 422: 1.0, 444: 2.0}.get(_int(info.get("chroma"), 444), 2.0)
    depth = 1 if _int(info.get("bit_depth"), 16) <= 8 else 2
    alpha = 1.0 if "A" in mode else 0.0
    return 2 * depth * (1 + chroma + alpha) + 1.5


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


def _jpeg_coefficients(image: Image.Image, file: IO[bytes]) -> int:
    """The DCT coefficients libjpeg buffers for the whole image, at full size whatever the DCT
    scale (16 bits each, in 8x8 blocks rounded up to whole MCUs), when it has to: for a
    progressive file, or one whose first scan does not hold every component (several scans).
    A baseline file is decoded an MCU row at a time: 0."""
    layers: list[tuple[Any, int, int, Any]] = list(getattr(image, "layer", None) or [])
    if not layers:
        return 0
    progressive = bool(image.info.get("progressive"))
    if not progressive and _first_scan_components(file) == len(layers):
        return 0
    width, height = image.size
    h_max = max(h for _, h, _, _ in layers) or 1
    v_max = max(v for _, _, v, _ in layers) or 1
    total = 0
    for _, h, v, _ in layers:
        blocks_wide = math.ceil(math.ceil(width * h / h_max) / 8)
        blocks_high = math.ceil(math.ceil(height * v / v_max) / 8)
        total += _round_up(blocks_wide, max(h, 1)) * _round_up(blocks_high, max(v, 1)) * 128
    return total


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# Markers of a JPEG without a length: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Segments walked at most before the first scan (Pillow has just read the same ones); a file
# with more is counted as if it had several scans: its estimate can only be too high.
_MAX_SEGMENTS = 1000


def _first_scan_components(file: IO[bytes]) -> int | None:
    """How many components a JPEG's first scan (SOS) holds, walking the segments before it;
    None when they cannot be followed."""
    file.seek(2)
    for _ in range(_MAX_SEGMENTS):
        if file.read(1) != b"\xff":
            return None
        marker = file.read(1)
        while marker == b"\xff":  # fill bytes
            marker = file.read(1)
        if not marker:
            return None
        if marker[0] in _STANDALONE:
            continue
        length = file.read(2)
        if len(length) < 2:
            return None
        if marker[0] == 0xDA:
            count = file.read(1)
            return count[0] if count else None
        file.seek(int.from_bytes(length, "big") - 2, io.SEEK_CUR)
    return None


# --- decoding and shrinking -------------------------------------------------------------------


def _thumbnail_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The size `Image.thumbnail((side, side))` gives an image of `size` (the same arithmetic:
    the aspect ratio kept, rounded towards the closer one); `size` when it fits already."""
    width, height = size
    if side >= width and side >= height:
        return size

    def round_aspect(number: float, key: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    x, y = side, side
    aspect = width / height
    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a decoded image becomes its preview: `Image.thumbnail`'s steps, worked out ahead.

    `thumbnail` first reduces by whole factors (box averages) while the image stays at least
    `REDUCING_GAP` times the preview, then resizes with Lanczos. Here the reduction is done band
    by band while the decoded image is read (`_shrink`), and Lanczos runs on the shrunk copy
    over the same box: the preview is the one `thumbnail` would make.
    """

    size: tuple[int, int]
    preview: tuple[int, int]
    factor: tuple[int, int]

    @classmethod
    def of(cls, size: tuple[int, int]) -> _Plan:
        """The plan for a decoded image of `size`."""
        preview = _thumbnail_size(size, PREVIEW_SIDE)
        if preview == size:
            return cls(size, size, (1, 1))
        factor = (
            int(size[0] / preview[0] / REDUCING_GAP) or 1,
            int(size[1] / preview[1] / REDUCING_GAP) or 1,
        )
        return cls(size, preview, factor)

    @property
    def in_place(self) -> bool:
        """Whether nothing needs reducing (a decoded RGB image is then used as it is)."""
        return self.factor == (1, 1)

    @property
    def shrunk(self) -> tuple[int, int]:
        """The size after the reduction (a partial block at an edge still makes a pixel)."""
        return -(-self.size[0] // self.factor[0]), -(-self.size[1] // self.factor[1])

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The region of the shrunk copy that the preview is resampled from."""
        return (0, 0, self.size[0] / self.factor[0], self.size[1] / self.factor[1])

    def band_rows(self, width: int) -> int:
        """Rows per band: about `BAND_PIXELS`, in whole reduction blocks."""
        step = self.factor[1]
        return step * max(1, BAND_PIXELS // (max(width, 1) * step))


class _Pixels(Protocol):
    """A decoded image, read in bands of rows."""

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the decoded pixels."""
        ...

    def band(self, top: int, bottom: int) -> Image.Image:
        """Rows `top` to `bottom` as an image of their own."""
        ...

    def whole(self) -> Image.Image | None:
        """The decoded image itself when it can serve as the shrunk copy (RGB), else None."""
        ...

    def release(self) -> None:
        """Free the decoded pixels now."""
        ...


class _Decoded:
    """Pixels in a Pillow image (JPEG, PNG)."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image

    @property
    def size(self) -> tuple[int, int]:
        """The decoded size (after draft mode's scaling)."""
        return self.image.size

    def band(self, top: int, bottom: int) -> Image.Image:
        return self.image.crop((0, top, self.size[0], bottom))

    def whole(self) -> Image.Image | None:
        return self.image if self.image.mode == "RGB" else None

    def release(self) -> None:
        # Leaving the `with` block of Image.open frees nothing, and `ImageFile.close` would also
        # close the file read from (the upload's spool, still needed to store the original): the
        # base class's `close` drops the pixels and leaves files alone.
        Image.Image.close(self.image)


class _Buffer:
    """Pixels in a decoder's buffer (WebP, HEIC), rows `stride` bytes apart."""

    def __init__(
        self, data: Any, mode: str, size: tuple[int, int], stride: int, owner: Any = None
    ) -> None:
        self.data: Any = data
        self.owner: Any = owner  # what else holds the buffer (pillow-heif's file)
        self.mode = mode
        self.size = size
        self.stride = stride

    def band(self, top: int, bottom: int) -> Image.Image:
        rows = memoryview(self.data)[top * self.stride : bottom * self.stride]
        # RGBA and RGBX are mapped without a copy; RGB (3 bytes a pixel) is copied, band-sized.
        return Image.frombuffer(
            self.mode,
            (self.size[0], bottom - top),
            cast(Any, rows),
            "raw",
            self.mode,
            self.stride,
            1,
        )

    def whole(self) -> Image.Image | None:
        return None

    def release(self) -> None:
        self.data = self.owner = None


def _decode_webp(file: IO[bytes]) -> _Buffer:
    """Decode the (first) frame of a WebP into libwebp's RGBA/RGBX buffer.

    Pillow's plugin keeps the decoder, with its two frame-sized canvases, until the image is
    garbage, and copies the frame once more into its image: 16 bytes per pixel at the peak.
    Here the decoder is dropped as soon as the frame is out: 12 at the peak, then 4.
    """
    if _webp is None:
        raise OSError("this server's Pillow has no WebP support")
    file.seek(0)
    data = file.read()
    decoder = _webp.WebPAnimDecoder(data)
    del data  # the decoder holds its own copy
    (width, height), _loop, _background, _frames, rawmode = decoder.get_info()
    frame = decoder.get_next()
    del decoder
    if frame is None:
        raise EOFError("failed to decode the WebP frame")
    return _Buffer(frame[0], rawmode, (width, height), width * 4)


def _decode_heif(file: IO[bytes]) -> _Buffer:
    """Decode the primary image of a HEIC into libheif's interleaved buffer, with the options
    of pillow-heif's Pillow plugin (8 bits, the container's rotation and mirroring applied),
    without the plugin's copy of the buffer into a Pillow image."""
    file.seek(0)
    try:
        heif = pillow_heif.open_heif(
            file, convert_hdr_to_8bit=True, hdr_to_16bit=True, remove_stride=False
        )
        data = heif.data  # decodes; the size may change while decoding (the plugin says so too)
    except RuntimeError as exc:  # libheif's decoder failed: damage, as the plugin treats it
        raise ValueError(str(exc)) from None
    return _Buffer(data, heif.mode, heif.size, heif.stride, owner=heif)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency onto white, CMYK/palette/16-bit converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # an RGBA mask: its alpha band, without a copy
        return background
    if image.mode.startswith("I;16") or image.mode == "I":
        return image.point(lambda v: v / 256).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _shrink(pixels: _Pixels, plan: _Plan) -> Image.Image:
    """The decoded image flattened to RGB and reduced by `plan.factor`, a band at a time: no
    full-size copy is ever made. Bands are whole reduction blocks tall, so the result is the
    reduction of the whole image, pixel for pixel."""
    width, height = pixels.size
    shrunk = Image.new("RGB", plan.shrunk)
    rows = plan.band_rows(width)
    for top in range(0, height, rows):
        band = _flatten(pixels.band(top, min(height, top + rows)))
        if not plan.in_place:
            band = band.reduce(plan.factor)
        shrunk.paste(band, (0, top // plan.factor[1]))
    return shrunk


def _preview(pixels: _Pixels) -> Image.Image:
    """The preview (RGB, longest side at most `PREVIEW_SIDE`) of decoded pixels, which are
    freed as soon as the shrunk copy is made."""
    plan = _Plan.of(pixels.size)
    whole = pixels.whole() if plan.in_place else None
    try:
        if whole is None:
            source = _shrink(pixels, plan)
            pixels.release()
            _give_back_freed_memory(pixels.size)
        else:
            source = whole
        if plan.preview == plan.size:
            return source.copy() if source is whole else source
        return source.resize(
            plan.preview, Image.Resampling.LANCZOS, box=plan.box, reducing_gap=None
        )
    finally:
        pixels.release()


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # not glibc (musl, macOS, Windows)
        return None
    return trim


_MALLOC_TRIM = _libc_malloc_trim()
# Below this many decoded pixels, what is freed is too little to be worth a trim.
_TRIM_PIXELS = 4_000_000


def _give_back_freed_memory(size: tuple[int, int]) -> None:
    """Return the memory of a freed full-size decode to the system now.

    Pillow allocates images in 16 MB blocks, which glibc serves from the heap of the decoding
    thread's arena once its mmap threshold has risen, and keeps when they are freed. Decodes run
    in whichever of the 40 worker threads is free, so every arena would keep a decode's worth:
    eight worst-case PNGs decoded two at a time took RSS 1.6 GB up, against 0.57 GB with this
    (docs/benchmarks.md). `malloc_trim` hands the free pages of every arena back (a few
    microseconds when there are none).
    """
    if _MALLOC_TRIM is not None and size[0] * size[1] >= _TRIM_PIXELS:
        _MALLOC_TRIM(0)


def process_image(file: IO[bytes], content_type: str, zone: timezone | Any) -> Photo:
    """Check an image fully and derive its preview and thumbnail; `Rejected` if it is damaged.

    `zone` interprets an EXIF time written without an offset (cameras write local time). The
    peak memory is at most `read_header(file, content_type).peak_bytes`.
    """
    stored = (0, 0)
    try:
        if content_type in _PILLOW_DECODED:
            file.seek(0)
            with Image.open(file, formats=[_PILLOW_FORMAT[content_type]]) as image:
                pixels = _Decoded(image)
                try:
                    width, height, orientation, facts = _facts(image, content_type, zone)
                    stored = (width, height)
                    if content_type == JPEG:
                        # DCT scaling: decode at 1/2, 1/4 or 1/8, still covering the preview.
                        image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
                    image.load()
                    preview = _preview(pixels)
                finally:
                    # Also when decoding failed halfway: the traceback would keep the image.
                    pixels.release()
        else:
            # The plugin's image (and its decoder) must be gone before the buffer decode.
            width, height, orientation, facts = _open_facts(file, content_type, zone)
            stored = (width, height)
            decode = _decode_webp if content_type == WEBP else _decode_heif
            preview = _preview(decode(file))
    except Image.DecompressionBombError as exc:
        raise Rejected.field("file", f"the image has too many pixels ({exc})") from None
    except Rejected:
        raise
    except _DAMAGED as exc:
        raise Rejected.field("file", f"the image is damaged or truncated ({exc})") from None
    finally:
        # Whatever the decoder freed (libjpeg's coefficients of a progressive file, the pixels
        # of a damaged one) goes back too.
        _give_back_freed_memory(stored)
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


# Decoded by Pillow itself; the others straight into their decoder's buffer.
_PILLOW_DECODED = (JPEG, PNG)


def _open_facts(
    file: IO[bytes], content_type: str, zone: Any
) -> tuple[int, int, int, dict[str, Any]]:
    file.seek(0)
    with Image.open(file, formats=[_PILLOW_FORMAT[content_type]]) as image:
        return _facts(image, content_type, zone)


def _facts(
    image: Image.Image, content_type: str, zone: Any
) -> tuple[int, int, int, dict[str, Any]]:
    """Size (as stored), EXIF orientation and EXIF facts, from the header; `Rejected` above
    `MAX_PIXELS`."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(width, height)
    exif = image.getexif()
    # pillow-heif applies a HEIC's rotation and mirroring itself.
    orientation = _orientation(exif) if content_type != HEIC else 1
    return width, height, orientation, _exif_facts(exif, zone)


def _too_many_pixels(width: int, height: int) -> Rejected:
    return Rejected.field(
        "file", f"the image has {width}x{height} pixels; at most {MAX_PIXELS:,} are accepted"
    )


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
