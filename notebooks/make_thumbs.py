"""Make the README thumbnails (notebooks/thumbs/*.png, 360 px wide) from the committed figures.

Run after the notebooks have regenerated notebooks/figures/: ``python notebooks/make_thumbs.py``.
"""

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
# one representative figure per notebook, and the part of it to keep (left, top, right, bottom as fractions)
THUMBS = {
    "error_vs_bits": ("error_vs_bits_all_sets", (0, 0, 1, 1)),
    "imatrix": ("imatrix_gain_per_type", (0, 0.08, 0.43, 1)),  # the synthetic-profile panel
    "superblock_anatomy": ("superblock_one_block", (0, 0, 0.5, 1)),  # the Q4_K column
    "layer_sensitivity": ("layer_sensitivity_mixed", (0, 0, 1, 1)),
}
WIDTH = 360


def main() -> None:
    out = HERE / "thumbs"
    out.mkdir(exist_ok=True)
    for nb, (fig, (l, t, r, b)) in THUMBS.items():
        im = Image.open(HERE / "figures" / f"{fig}.png").convert("RGB")
        im = im.crop((round(l * im.width), round(t * im.height), round(r * im.width), round(b * im.height)))
        h = round(im.height * WIDTH / im.width)
        im.resize((WIDTH, h), Image.LANCZOS).save(out / f"{nb}.png", optimize=True)
        print(f"thumbs/{nb}.png  ({WIDTH} x {h}) from figures/{fig}.png")


if __name__ == "__main__":
    main()
