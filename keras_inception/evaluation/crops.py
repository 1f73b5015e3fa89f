"""Crop schemes of the paper's evaluation: slim's single central crop, 10 and 12 crops, and
GoogLeNet's 144 crops.

A scheme is data first: `scheme.boxes(image_size, input_size)` lists the regions of the original
image to look at, and `crop` resamples them all in one `tf.image.crop_and_resize` call. The
documentation figure is drawn from the same boxes, so picture and code cannot disagree.

Coordinates: a `CropBox` covers rows [y0, y1) and columns [x0, x1) of the original image, in pixels
(pixel (r, c) is the unit square at (r, c)); the edges need not be whole pixels. The box is resampled
to the model's input size bilinearly at the output pixel centres (tf.image.resize's convention), so
taking a box is the same as resizing the image and cutting an exact crop out of it, but in one
resampling; `mirrored` flips the crop left-right.
"""

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_inception.data.preprocessing import EVAL_CROP_FRACTION, central_crop

# GoogLeNet resized the shorter side to 256, 288, 320 and 352 for its 224 input; as fractions of
# the input they carry over to any input size (about 342, 384, 427 and 470 for 299).
GOOGLENET_SCALES = (256 / 224, 288 / 224, 320 / 224, 352 / 224)


class CropBox(NamedTuple):
    """A region [y0, y1) x [x0, x1) of the original image, in pixels, and whether it is mirrored."""

    y0: float
    x0: float
    y1: float
    x1: float
    mirrored: bool = False


class CropScheme:
    """A rule from an image size to crop boxes; calling a scheme crops an image with it."""

    name = None

    def boxes(self, image_size, input_size):
        """The `CropBox`es to take from an image of `image_size` (height, width) for a model whose
        input is `input_size` (height, width)."""
        raise NotImplementedError

    def __call__(self, image, input_size):
        """The crops of one image (uint8 or float [H, W, 3]): float32 [crops, *input_size, 3] in
        the image's own value range."""
        image = check_image(image)
        return self.crop(image, self.boxes(image.shape[:2], input_size), input_size)

    def crop(self, image, boxes, input_size):
        """Resample `boxes` (some of this scheme's boxes for `image`) to `input_size`."""
        return crop(image, boxes, input_size)


@dataclasses.dataclass(frozen=True)
class CentralCrop(CropScheme):
    """Slim's evaluation crop: the central `fraction` of each side, cut at whole pixels exactly as
    `tf.image.central_crop` does, then resized to the input without keeping the aspect ratio."""

    fraction: float = EVAL_CROP_FRACTION

    name = "single"

    def __post_init__(self):
        if not 0 < self.fraction <= 1:
            raise ValueError(f"CentralCrop: fraction must be in (0, 1], got {self.fraction!r}.")

    def boxes(self, image_size, input_size):
        height, width = image_size
        top = int((height - height * self.fraction) / 2)
        left = int((width - width * self.fraction) / 2)
        return (CropBox(top, left, height - top, width - left),)

    def crop(self, image, boxes, input_size):
        """The one central crop through the same TensorFlow ops as training's validation, so
        that evaluation and the validation scores of a run agree exactly."""
        return central_crop(image, input_size, self.fraction)[None]


@dataclasses.dataclass(frozen=True)
class CornerCrops(CropScheme):
    """10 crops: the four corners and the centre, each also mirrored. The image is seen as resized
    (aspect kept) until it just covers `scale` times the input, and the crops are input-sized in that
    view: for square inputs a crop's side is the shorter image side divided by `scale`.

    With `whole_image` (12 crops), the whole image, resized to the input, and its mirror follow.
    """

    scale: float = 256 / 224
    whole_image: bool = False

    def __post_init__(self):
        check_scale(self.scale, "CornerCrops")

    @property
    def name(self):
        return "12" if self.whole_image else "10"

    def boxes(self, image_size, input_size):
        height, width = image_size
        crop_size = [side / self.scale for side in largest_box(image_size, input_size)]
        boxes = five_crops(CropBox(0, 0, height, width), crop_size)
        if self.whole_image:
            boxes.append(CropBox(0, 0, height, width))
        return with_mirrors(boxes)


@dataclasses.dataclass(frozen=True)
class GoogLeNetCrops(CropScheme):
    """GoogLeNet's 144 crops: for each scale, the three largest squares (left, centre, right; or
    top, centre, bottom for portrait images), and from each the four corners, the centre and the
    whole square, each also mirrored: 4 scales x 3 squares x 6 x 2.

    A scale s is the shorter side relative to the input (s = 256/224 resizes the shorter side to
    256 for a 224 input), so a crop's side is the square's side divided by s. For non-square inputs
    "square" means the largest box of the input's aspect ratio. Order: by scale, then square, then
    crop (corners, centre, whole square), each box followed by its mirror.
    """

    scales: tuple = GOOGLENET_SCALES

    def __post_init__(self):
        if not self.scales:
            raise ValueError("GoogLeNetCrops: scales must not be empty.")
        for scale in self.scales:
            check_scale(scale, "GoogLeNetCrops")

    @property
    def name(self):
        return str(len(self.scales) * 3 * 6 * 2)

    def boxes(self, image_size, input_size):
        height, width = image_size
        square_h, square_w = largest_box(image_size, input_size)
        # The squares slide along whichever side they do not fill: start, middle, end.
        tops = [(height - square_h) * t for t in (0, 0.5, 1)]
        lefts = [(width - square_w) * t for t in (0, 0.5, 1)]
        squares = [CropBox(y, x, y + square_h, x + square_w) for y, x in zip(tops, lefts)]
        boxes = []
        for scale, square in itertools.product(self.scales, squares):
            boxes += five_crops(square, (square_h / scale, square_w / scale))
            boxes.append(square)
        return with_mirrors(boxes)


def check_scale(scale, scheme):
    if not scale >= 1:
        raise ValueError(
            f"{scheme}: a scale must be at least 1 (a crop cannot be larger than the region it is "
            f"cut from), got {scale!r}."
        )


def check_image(image):
    """Return `image` if it is one RGB image [H, W, 3], else raise naming its shape."""
    if len(image.shape) != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"Expected one RGB image of shape (height, width, 3), got shape {image.shape}."
        )
    return image


def largest_box(image_size, input_size):
    """(height, width) of the largest box with the input's aspect ratio that fits in the image."""
    fit = min(image_size[0] / input_size[0], image_size[1] / input_size[1])
    return input_size[0] * fit, input_size[1] * fit


def five_crops(region, crop_size):
    """Boxes of `crop_size` at the four corners of `region` (top-left, top-right, bottom-left,
    bottom-right) and at its centre."""
    crop_h, crop_w = crop_size
    tops = (region.y0, region.y0, region.y1 - crop_h, region.y1 - crop_h)
    lefts = (region.x0, region.x1 - crop_w, region.x0, region.x1 - crop_w)
    corners = [CropBox(y, x, y + crop_h, x + crop_w) for y, x in zip(tops, lefts)]
    centre_y = (region.y0 + region.y1 - crop_h) / 2
    centre_x = (region.x0 + region.x1 - crop_w) / 2
    return [*corners, CropBox(centre_y, centre_x, centre_y + crop_h, centre_x + crop_w)]


def with_mirrors(boxes):
    """Each box followed by its mirror image."""
    return tuple(box._replace(mirrored=mirrored) for box in boxes for mirrored in (False, True))


def crop(image, boxes, input_size):
    """Resample `boxes` of `image` [H, W, 3] to `input_size`: float32 [len(boxes), *input_size, 3]."""
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 5)
    top, bottom = sample_span(boxes[:, 0], boxes[:, 2], input_size[0], height)
    left, right = sample_span(boxes[:, 1], boxes[:, 3], input_size[1], width)
    # crop_and_resize flips a crop whose x1 < x2: swapping the ends mirrors it.
    mirrored = boxes[:, 4].astype(bool)
    left, right = np.where(mirrored, right, left), np.where(mirrored, left, right)
    # A one-pixel edge border lets samples up to half a pixel outside the image take the edge
    # value, as tf.image.resize does, instead of crop_and_resize's zeros.
    padded = tf.pad(
        tf.convert_to_tensor(image)[None], [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"
    )
    return tf.image.crop_and_resize(
        padded,
        np.stack([top, left, bottom, right], axis=1).astype("float32"),
        tf.zeros(len(boxes), tf.int32),
        input_size,
    )


def sample_span(start, end, samples, size):
    """crop_and_resize's coordinates for `samples` pixel-centre samples of [start, end) along an
    image side of `size` pixels, once padded by one pixel at each end."""
    step = (end - start) / samples
    first = start + step / 2 - 0.5 + 1
    last = end - step / 2 - 0.5 + 1
    return first / (size + 1), last / (size + 1)


SCHEMES = {
    "single": CentralCrop(),
    "10": CornerCrops(),
    "12": CornerCrops(whole_image=True),
    "144": GoogLeNetCrops(),
}


def get_scheme(scheme):
    """A `CropScheme` from itself or from one of the names in `SCHEMES`."""
    if isinstance(scheme, CropScheme):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"Unknown crop scheme {scheme!r}; choose one of {', '.join(SCHEMES)} "
            "or pass a CropScheme."
        )
    return SCHEMES[scheme]
