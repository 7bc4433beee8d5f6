"""Pairs of receipt images for duplicate detection: copies of one receipt (photographed
again, re-compressed, scaled, cropped, lit differently) and other receipts of the same
shop (the same header, other items, amounts and day).

Usage: python receipt_pairs.py --part tune|heldout --count N [--first I] --out DIR

Writes DIR/<name>.<png|jpg> and DIR/pairs.json: {"same": [[a, b], ...], "different":
[[a, b], ...]}. Every receipt is drawn from its own seed, "pairs:<part>:<n>", so the parts
never share a receipt: tune the threshold on `tune` only and report `heldout`.
"""

import argparse
import json
import os
import random
import sys

from PIL import Image, ImageChops, ImageEnhance, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from receipt_corpus import FONTS, build, noise, render  # noqa: E402  (beside this file)


def split(rows):
    """The rows before the first rule (the shop's header) and after it."""
    for n, row in enumerate(rows):
        if row[0] == "rule":
            return rows[:n + 1], rows[n + 1:]
    return rows[:3], rows[3:]


def light(size, rng):
    """Light falling across the page from one side: a ramp in a random direction, from
    `low` to full, without the dark corners a turned rectangle would leave."""
    ramp = Image.linear_gradient("L").resize((512, 512)).rotate(rng.uniform(0, 360), resample=Image.BICUBIC)
    ramp = ramp.crop((106, 106, 406, 406)).resize(size)
    low = rng.randint(150, 230)
    return ramp.point(lambda v: low + (255 - low) * v // 255)


def recompressed(image, rng, out, name):
    factor = rng.uniform(0.5, 1.5)
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.BILINEAR)
    path = os.path.join(out, name + ".jpg")
    image.save(path, "JPEG", quality=rng.randint(25, 85))
    return path


def cropped(image, rng, out, name):
    w, h = image.size
    box = (int(w * rng.uniform(0, 0.04)), int(h * rng.uniform(0, 0.03)),
           w - int(w * rng.uniform(0, 0.04)), h - int(h * rng.uniform(0, 0.03)))
    image = image.crop(box)
    factor = rng.uniform(0.6, 1.2)
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.BICUBIC)
    path = os.path.join(out, name + ".png")
    image.save(path, "PNG")
    return path


def relit(image, rng, out, name):
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.1))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.3))
    image = ImageChops.multiply(image, light(image.size, rng))
    path = os.path.join(out, name + ".jpg")
    image.save(path, "JPEG", quality=rng.randint(50, 90))
    return path


def rephotographed(image, rng, out, name):
    """On a table again: a margin of background, turned a little, lit unevenly, blurred."""
    margin = int(max(image.size) * rng.uniform(0.02, 0.06))
    shade = rng.randint(40, 140)
    background = Image.new("L", (image.width + 2 * margin, image.height + 2 * margin), shade)
    background.paste(image, (margin, margin))
    image = background.rotate(rng.uniform(-2.5, 2.5), expand=True, fillcolor=shade, resample=Image.BICUBIC)
    image = ImageChops.multiply(image, light(image.size, rng))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    grain = noise(rng, image.size, rng.uniform(5, 20))
    image = ImageChops.add(image, grain.point(lambda v: v // 8), 1, -16)
    factor = rng.uniform(0.6, 1.2)
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.BILINEAR)
    path = os.path.join(out, name + ".jpg")
    image.save(path, "JPEG", quality=rng.randint(45, 85))
    return path


COPIES = [recompressed, cropped, relit, rephotographed]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["tune", "heldout"], required=True)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--first", type=int, default=0, help="index of the first receipt")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    same, different = [], []
    for n in range(args.first, args.first + args.count):
        rng = random.Random(f"pairs:{args.part}:{n}")
        rows, layout, width_kind, _ = build(rng, "clean")
        font = rng.choice(FONTS)
        size = rng.randint(18, 32)
        header, _ = split(rows)
        base = render(rows, layout, width_kind, font, size, False)
        original = os.path.join(args.out, f"r{n:03}.png")
        base.save(original, "PNG")
        for k, copy in enumerate(COPIES):
            path = copy(base, rng, args.out, f"r{n:03}-copy{k}")
            same.append([os.path.basename(original), os.path.basename(path)])
        # Other receipts of the shop: its header, another visit's items, amounts and day.
        for k in range(3):
            other_rows, _, _, _ = build(random.Random(f"pairs:{args.part}:{n}:other:{k}"), "clean")
            _, body = split(other_rows)
            sibling = render(header + body, layout, width_kind, font, size, False)
            path = os.path.join(args.out, f"r{n:03}-other{k}.png")
            sibling.save(path, "PNG")
            different.append([os.path.basename(original), os.path.basename(path)])
            # The other receipt photographed, against the first's copies too.
            shot = rephotographed(sibling, rng, args.out, f"r{n:03}-other{k}-shot")
            different.append([os.path.basename(original), os.path.basename(shot)])
        for k in range(len(COPIES)):
            copy_name = [p for p in os.listdir(args.out) if p.startswith(f"r{n:03}-copy{k}.")][0]
            different.append([copy_name, f"r{n:03}-other{k % 3}.png"])
    with open(os.path.join(args.out, "pairs.json"), "w") as f:
        json.dump({"same": same, "different": different}, f)
    print(f"{args.out}: {len(same)} pairs of one receipt, {len(different)} of two ({args.part})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
