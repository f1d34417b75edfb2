"""Tests of the exposure plugin under the host's CPython, with bindings generated for it.

Run from this folder: `python3 -m unittest test_app`. It needs componentize-py, found in
$COMPONENTIZE_PY or else in the repository's .rfo/venv (which ../../build.sh creates).
"""

import array
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
COMPONENTIZE_PY = os.environ.get(
    "COMPONENTIZE_PY", str(REPO_ROOT / ".rfo" / "venv" / "bin" / "componentize-py")
)

_bindings = tempfile.TemporaryDirectory(prefix="rfo-exposure-bindings-")
subprocess.run(
    [COMPONENTIZE_PY, "-d", str(REPO_ROOT / "wit"), "-w", "detector", "bindings", _bindings.name],
    check=True,
    stdout=subprocess.DEVNULL,
)
sys.path.insert(0, _bindings.name)
sys.path.insert(0, str(HERE))

import app  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from wit_world.exports.plugin import DetectError_InvalidImage, Image  # noqa: E402


def grey16(values):
    samples = array.array("H", values)
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


class CountClipped(unittest.TestCase):
    def test_grey8_counts_both_ends(self):
        self.assertEqual(app.count_clipped(bytes([0, 1, 128, 254, 255, 255]), 1), 3)

    def test_grey16_needs_both_bytes(self):
        # 0x00FF and 0xFF00 share a byte with a clipped value but are not clipped.
        pixels = grey16([0, 0x00FF, 0xFF00, 0xFFFF, 12345])
        self.assertEqual(app.count_clipped(pixels, 2), 2)

    def test_rgb8_needs_every_channel(self):
        pixels = bytes([0, 0, 0, 0, 0, 1, 255, 255, 255, 255, 254, 255])
        self.assertEqual(app.count_clipped(pixels, 3), 2)


class Detect(unittest.TestCase):
    def test_fraction_scores_whole_image(self):
        image = Image(width=4, height=2, bit_depth=16, channels=1,
                      pixels=grey16([0, 0xFFFF, 5, 6, 7, 8, 9, 10]))
        detections = app.Plugin().detect(image)
        self.assertEqual(len(detections), 1)
        found = detections[0]
        self.assertEqual(found.label, "clipped")
        self.assertEqual((found.region.x, found.region.y), (0, 0))
        self.assertEqual((found.region.width, found.region.height), (4, 2))
        self.assertAlmostEqual(found.score, 0.25)

    def test_unclipped_image_gives_nothing(self):
        image = Image(width=2, height=1, bit_depth=8, channels=1, pixels=bytes([1, 254]))
        self.assertEqual(app.Plugin().detect(image), [])

    def test_invalid_images_raise_invalid_image(self):
        cases = {
            "short buffer": Image(width=2, height=2, bit_depth=8, channels=1, pixels=bytes(3)),
            "12-bit": Image(width=1, height=1, bit_depth=12, channels=1, pixels=bytes(2)),
            "2 channels": Image(width=1, height=1, bit_depth=8, channels=2, pixels=bytes(2)),
            "empty": Image(width=0, height=5, bit_depth=8, channels=1, pixels=b""),
        }
        for name, image in cases.items():
            with self.subTest(name), self.assertRaises(Err) as raised:
                app.Plugin().detect(image)
            self.assertIsInstance(raised.exception.value, DetectError_InvalidImage)

    def test_large_16_bit_image_is_quick(self):
        # 2000x2000 16-bit with a clipped top band of 100 rows; the time is CPython's, not
        # the component's.
        width, height = 2000, 2000
        row_clipped = grey16([0xFFFF] * width)
        row_plain = grey16([0x8000] * width)
        pixels = row_clipped * 100 + row_plain * (height - 100)
        image = Image(width=width, height=height, bit_depth=16, channels=1, pixels=pixels)
        started = time.perf_counter()
        detections = app.Plugin().detect(image)
        elapsed = time.perf_counter() - started
        self.assertAlmostEqual(detections[0].score, 0.05)
        self.assertLess(elapsed, 2.0)

    def test_metadata_names_the_label(self):
        info = app.Plugin().metadata()
        self.assertEqual(info.name, "exposure")
        self.assertEqual(info.detects, ["clipped"])


if __name__ == "__main__":
    unittest.main()
