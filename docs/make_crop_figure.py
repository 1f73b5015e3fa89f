"""Draw docs/crop_boxes.png: the boxes of each crop scheme over a photo, taken from the schemes'
own `boxes()` so that the picture shows exactly what the code crops.

    python docs/make_crop_figure.py
"""

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from sklearn.datasets import load_sample_image  # noqa: E402

from keras_inception.evaluation import SCHEMES, GoogLeNetCrops  # noqa: E402

INPUT_SIZE = (299, 299)
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crop_boxes.png")
COLOURS = plt.get_cmap("tab10").colors
MARGIN = 12


def draw(axes, image, boxes, title):
    """The image with one outline per box; mirrored twins are the same region and not redrawn."""
    axes.imshow(image)
    height, width = image.shape[:2]
    axes.set_xlim(-MARGIN, width + MARGIN)  # room for the boxes on the image's edges
    axes.set_ylim(height + MARGIN, -MARGIN)
    for index, box in enumerate(box for box in boxes if not box.mirrored):
        axes.add_patch(
            Rectangle(
                (box.x0, box.y0),
                box.x1 - box.x0,
                box.y1 - box.y0,
                fill=False,
                linewidth=2,
                edgecolor=COLOURS[index % len(COLOURS)],
            )
        )
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()


def main():
    image = load_sample_image("china.jpg")  # 427 x 640, bundled with scikit-learn
    size = image.shape[:2]
    figure, grid = plt.subplots(2, 4, figsize=(16, 6.2))
    for axes, name in zip(grid[0], ["single", "10", "12"]):
        boxes = SCHEMES[name].boxes(size, INPUT_SIZE)
        draw(axes, image, boxes, f'"{name}": {len(boxes)} crops' if len(boxes) > 1 else '"single"')
    all_boxes = SCHEMES["144"].boxes(size, INPUT_SIZE)
    squares = [box for box in all_boxes if box.y1 - box.y0 == min(size)]
    draw(grid[0, 3], image, squares, '"144": the three squares, whole crops at every scale')
    # One panel per scale: a one-scale scheme gives exactly that scale's boxes, and its first 12
    # (6 crops, each with its mirror) are those of the first square.
    for axes, scale in zip(grid[1], GoogLeNetCrops().scales):
        boxes = GoogLeNetCrops(scales=(scale,)).boxes(size, INPUT_SIZE)[:12]
        draw(
            axes,
            image,
            boxes,
            f'"144", scale {scale * 224:.0f}/224: the 6 crops of the left square',
        )
    figure.suptitle(
        f"Crop boxes for a {size[1]}x{size[0]} image and a 299x299 input (each box is also taken "
        "mirrored)",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(OUTPUT, dpi=80)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
