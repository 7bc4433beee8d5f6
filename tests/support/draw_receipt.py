"""Draws a receipt image, as a phone or a scanner would deliver it.

Usage: python draw_receipt.py OUTPUT < spec.json
The spec: {"lines": ["CAFE NERO", "Latte\t4.50", ...], "font": "DejaVuSans.ttf", "size": 28,
"rotate": 0.0, "blur": 0.0, "noise": 0, "shade": false, "format": "PNG", "width": 0,
"squeeze": 1.0 (the page drawn that much narrower: condensed print)}.
Fonts are looked up in Debian's DejaVu folder.
With {"bomb": [WIDTH, HEIGHT]} it writes a decompression bomb instead: a valid, blank
greyscale PNG of that many pixels, a few hundred kilobytes compressed.
"format" may also be "PDF" (the image inside a PDF, as a scanner saves it), "TEXTPDF"
(a PDF whose lines are text, as a till or web shop issues it; no image at all), and
"pages" (a list of line lists, instead of "lines") a scanned PDF of several pages, and
"exif" an EXIF orientation (6: the camera was turned right — the pixels are stored
turned, the tag says how to show them).
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


def text_pdf(pages: list, size: int, page_size=None) -> bytes:
    """A PDF whose lines are text (Helvetica, WinAnsi; a character it lacks prints as
    "?", as a till's would), a page per list of lines; pages fit the longest page's
    lines unless `page_size` (width, height) is given."""
    leading = size * 1.4
    width, height = page_size or (
        int(max(len(line) for page in pages for line in page) * size * 0.6 + 80),
        int(leading * max(len(page) for page in pages) + 2 * size + 40),
    )

    def literal(line: str) -> bytes:
        raw = line.replace("\t", "    ").encode("cp1252", "replace")
        return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"

    # Objects: 1 catalog, 2 page tree, then a page and its contents per page, the font last.
    font = 3 + 2 * len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(len(pages))), len(pages)),
    ]
    for i, lines in enumerate(pages):
        text = b"BT /F1 %d Tf %.1f TL 40 %d Td " % (size, leading, height - size - 20)
        text += b" ".join(literal(line) + b" Tj T*" for line in lines) + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (width, height, 4 + 2 * i, font)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pdf = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return pdf


def draw(spec: dict) -> Image.Image:
    lines = spec["lines"]
    font = ImageFont.truetype(FONTS + spec.get("font", "DejaVuSans.ttf"), spec.get("size", 28))
    ascent, descent = font.getmetrics()
    line_height = int((ascent + descent) * 1.4)
    # A tab puts what follows it at the right edge, as tills print prices.
    width = max(int(font.getlength(line.replace("\t", "      "))) for line in lines) + 120
    # A wide till roll or invoice: prices far from their labels.
    width = max(width, spec.get("width", 0))
    height = line_height * len(lines) + 120
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        left, _, right = line.partition("\t")
        draw.text((60, 60 + i * line_height), left, font=font, fill=0)
        if right:
            x = width - 60 - int(font.getlength(right))
            draw.text((x, 60 + i * line_height), right, font=font, fill=0)
    if spec.get("squeeze"):
        # Condensed print, as tills print a total: letters narrower than they are tall.
        image = image.resize((int(width * spec["squeeze"]), height), Image.LANCZOS)
    if spec.get("shade"):
        # Uneven light: darker towards one corner.
        shade = Image.linear_gradient("L").resize(image.size).point(lambda v: 255 - v // 4)
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
    return image


def main(output: str) -> None:
    spec = json.load(sys.stdin)
    if "bomb" in spec:
        png_bomb(output, *spec["bomb"])
        return
    if "pages" in spec:
        # A scanned document of several pages, saved as one PDF.
        images = [draw(dict(spec, lines=page)).convert("RGB") for page in spec["pages"]]
        images[0].save(output, "PDF", save_all=True, append_images=images[1:], resolution=150)
        return
    if spec.get("format") == "TEXTPDF":
        with open(output, "wb") as f:
            f.write(text_pdf([spec["lines"]], spec.get("size", 12)))
        return
    image = draw(spec)
    exif = spec.get("exif")
    if exif:
        # Store the pixels as the camera saw them; the tag tells viewers to turn them back.
        turn = {3: Image.ROTATE_180, 6: Image.ROTATE_90, 8: Image.ROTATE_270}[exif]
        image = image.transpose(turn)
        tags = Image.Exif()
        tags[0x0112] = exif
        image.save(output, spec.get("format", "JPEG"), exif=tags.tobytes())
        return
    image.save(output, spec.get("format", "PNG"))


if __name__ == "__main__":
    main(sys.argv[1])
