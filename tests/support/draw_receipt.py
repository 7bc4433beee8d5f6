"""Draws a receipt image, as a phone or a scanner would deliver it.

Usage: python draw_receipt.py OUTPUT < spec.json
The spec: {"lines": ["CAFE NERO", ...], "font": "DejaVuSans.ttf", "size": 28,
"rotate": 0.0, "blur": 0.0, "noise": 0, "shade": false, "format": "PNG"}.
Fonts are looked up in Debian's DejaVu folder.
With {"bomb": [WIDTH, HEIGHT]} it writes a decompression bomb instead: a valid, blank
greyscale PNG of that many pixels, a few hundred kilobytes compressed.
"""

import json
import random
import struct
import sys
import zlib

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = "/usr/share/fonts/truetype/dejavu/"


def png_bomb(output: str, width: int, height: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(output, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def main(output: str) -> None:
    spec = json.load(sys.stdin)
    if "bomb" in spec:
        png_bomb(output, *spec["bomb"])
        return
    font = ImageFont.truetype(FONTS + spec.get("font", "DejaVuSans.ttf"), spec.get("size", 28))
    lines = spec["lines"]
    ascent, descent = font.getmetrics()
    line_height = int((ascent + descent) * 1.4)
    width = max(int(font.getlength(line)) for line in lines) + 120
    height = line_height * len(lines) + 120
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + i * line_height), line, font=font, fill=0)
    if spec.get("shade"):
        # Uneven light: darker towards one corner.
        shade = Image.linear_gradient("L").resize((width, height)).point(lambda v: 255 - v // 4)
        image = Image.composite(image, shade, image.point(lambda v: 255 if v < 128 else 0))
    if spec.get("rotate"):
        image = image.rotate(spec["rotate"], expand=True, fillcolor=255, resample=Image.BICUBIC)
    if spec.get("blur"):
        image = image.filter(ImageFilter.GaussianBlur(spec["blur"]))
    noise = spec.get("noise", 0)
    if noise:
        rng = random.Random(7)
        pixels = image.load()
        for _ in range(image.width * image.height // 50):
            x, y = rng.randrange(image.width), rng.randrange(image.height)
            pixels[x, y] = max(0, min(255, pixels[x, y] + rng.randint(-noise, noise)))
    image.save(output, spec.get("format", "PNG"))


if __name__ == "__main__":
    main(sys.argv[1])
