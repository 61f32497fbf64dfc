"""Decoding and validating uploaded images, with errors a client can act on.

Why strict: an upload is untrusted. Size is checked from the header before any pixel is decoded
(a 50-megapixel PNG of one colour is a few kilobytes), truncated files are refused rather than
padded, and only the formats the API promises (PNG, JPEG) are accepted.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 4096 * 4096
MIN_SIDE = 8
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


class RequestError(Exception):
    """A client error: HTTP status and a message meant for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Bytes -> fully loaded PIL image, or RequestError (400 / 413 / 415)."""
    if not data:
        raise RequestError(400, "empty body: send a PNG or JPEG image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise RequestError(400, "body is not a recognisable image (PNG or JPEG expected)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise RequestError(413, f"image too large: the limit is {max_pixels} pixels") from None
        if image.format not in FORMATS:
            raise RequestError(415, f"unsupported image format {image.format}: send PNG or JPEG")
        w, h = image.size
        if w * h > max_pixels:
            raise RequestError(
                413,
                f"image too large: {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                f"{max_pixels / 1e6:.1f} megapixels ({max_pixels} pixels)",
            )
        if min(w, h) < MIN_SIDE:
            raise RequestError(400, f"image too small: {w}x{h}; each side must be >= {MIN_SIDE}")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise RequestError(400, f"image data is truncated or corrupt: {exc}") from None
    return image
