"""rfo detection plugin in Python: reports how much of the image is clipped.

A pixel is clipped when every channel sits at the lowest or the highest code value (0, or
255 / 65535). Clipped pixels carry no detail: the window or the detector cut them off. The plugin
returns one `clipped` detection covering the whole image, scored by the clipped fraction, or no
detection when nothing is clipped.

componentize-py builds this module into an `rfo:detector` component (see ../../build.sh). The
class `Plugin` implements the `plugin` interface through the generated `wit_world` bindings.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.plugin import (
    DetectError_InvalidImage,
    Detection,
    Image,
    PluginInfo,
    Region,
)

LABEL = "clipped"


class Plugin(exports.Plugin):
    def metadata(self) -> PluginInfo:
        return PluginInfo(
            name="exposure",
            version="0.1.0",
            detects=[LABEL],
            description="Reports the fraction of pixels clipped at either end of the grey range",
        )

    def detect(self, image: Image) -> list[Detection]:
        problem = validation_error(image)
        if problem is not None:
            raise Err(DetectError_InvalidImage(problem))

        bytes_per_pixel = image.channels * image.bit_depth // 8
        clipped = count_clipped(image.pixels, bytes_per_pixel)
        if clipped == 0:
            return []
        fraction = clipped / (image.width * image.height)
        whole_image = Region(x=0, y=0, width=image.width, height=image.height)
        return [Detection(region=whole_image, label=LABEL, score=fraction)]


def validation_error(image: Image) -> str | None:
    """Returns why the image does not match its own description, or None when it does."""
    if image.bit_depth not in (8, 16):
        return f"bit depth {image.bit_depth} is invalid: expected 8 or 16"
    if image.channels not in (1, 3):
        return f"channel count {image.channels} is invalid: expected 1 (grey) or 3 (RGB)"
    if image.width == 0 or image.height == 0:
        return f"image is empty ({image.width}x{image.height})"
    expected = image.width * image.height * image.channels * image.bit_depth // 8
    if len(image.pixels) != expected:
        return (
            f"pixel buffer is {len(image.pixels)} bytes, expected {expected} for a "
            f"{image.width}x{image.height} image with {image.channels} channel(s) of "
            f"{image.bit_depth} bits"
        )
    return None


def count_clipped(pixels: bytes, bytes_per_pixel: int) -> int:
    """Counts the pixels whose bytes are all 0x00 or all 0xFF.

    For 8- and 16-bit samples that is exactly "every channel at 0 or every channel at the
    maximum". Every pixel is counted, without sampling. Byte `i` of each plane below belongs to
    pixel `i`. OR-ing the planes as big integers therefore leaves a zero byte exactly where all
    of a pixel's bytes are zero, and AND-ing them leaves 0xFF exactly where all are 0xFF.
    Slicing, int.from_bytes, the bitwise operators and bytes.count all run in C, so no Python
    loop runs per pixel.
    """
    pixel_count = len(pixels) // bytes_per_pixel
    any_set = 0
    all_set = (1 << (8 * pixel_count)) - 1
    for offset in range(bytes_per_pixel):
        plane = int.from_bytes(pixels[offset::bytes_per_pixel], "little")
        any_set |= plane
        all_set &= plane
    black = any_set.to_bytes(pixel_count, "little").count(0)
    white = all_set.to_bytes(pixel_count, "little").count(0xFF)
    return black + white
