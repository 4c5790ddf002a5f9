"""High resolution (`anyres`, `anyres_max_N`; LLaVA-NeXT / OneVision): pick the grid from `image_grid_pinpoints`
that best fits the image, encode a base view plus tiles, unpad the tile feature map, cap it at N tiles' worth
of tokens, and end every row with a learned newline embedding.

`layout()` does all the size arithmetic without pixels or tensors, so the number of placeholder tokens of
an image is known from its size before anything is encoded (validation, packing); `merge()` follows it.
Pinpoints are (height, width) pairs in pixels, as in Hugging Face's Llava-Next config.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from polyvlm.models.encoders.vision import preprocess_images


def parse_mode(mode: str) -> int | None:
    """`pad` -> None; `anyres` -> 0 (no cap); `anyres_max_N` -> N."""
    if mode == "pad":
        return None
    if mode == "anyres":
        return 0
    m = re.fullmatch(r"anyres_max_(\d+)", mode)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"model.image_aspect_ratio must be pad, anyres or anyres_max_N (N >= 1), got '{mode}'")
    return int(m.group(1))


def parse_pinpoints(pinpoints: list | str, tile: int) -> list[tuple[int, int]]:
    """[[h, w], ...] in pixels, or `(1x1),...,(6x6)` (every grid between the two, in tiles of `tile` px)."""
    if isinstance(pinpoints, list) and len(pinpoints) == 1 and isinstance(pinpoints[0], str):
        pinpoints = pinpoints[0]
    if isinstance(pinpoints, str):
        found = re.findall(r"\((\d+)x(\d+)\)", pinpoints)
        if len(found) != 2:
            raise ValueError(f"model.image_grid_pinpoints '{pinpoints}': expected the form '(1x1),...,(6x6)'")
        (r0, c0), (r1, c1) = [(int(a), int(b)) for a, b in found]
        return [(r * tile, c * tile) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
    out = []
    for p in pinpoints:
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, int) and v > 0 for v in p)):
            raise ValueError(f"model.image_grid_pinpoints: {p!r} is not a [height, width] pair of positive ints")
        if p[0] % tile or p[1] % tile:
            raise ValueError(f"model.image_grid_pinpoints: {p} is not a multiple of the encoder's image size {tile}")
        out.append((int(p[0]), int(p[1])))
    if not out:
        raise ValueError("model.image_grid_pinpoints is empty; anyres needs at least one grid")
    return out


def best_resolution(w: int, h: int, pinpoints: list[tuple[int, int]]) -> tuple[int, int]:
    """The (height, width) keeping most of the image's pixels after a fitting resize, then wasting least."""
    best, best_eff, best_waste = pinpoints[0], -1, math.inf
    for ph, pw in pinpoints:
        scale = min(pw / w, ph / h)
        eff = min(int(w * scale) * int(h * scale), w * h)
        waste = pw * ph - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (ph, pw), eff, waste
    return best


@dataclass(frozen=True)
class Layout:
    """Token layout of one anyres image: a `rows` x `cols` tile grid, the unpadded feature map (`uh`, `uw`),
    the map after the anyres_max cap (`fh`, `fw`), and the token count (base + fh * (fw + 1))."""

    rows: int
    cols: int
    uh: int
    uw: int
    fh: int
    fw: int
    base: int

    @property
    def views(self) -> int:
        return 1 + self.rows * self.cols

    @property
    def base_only(self) -> bool:
        return self.rows == 0

    @property
    def tokens(self) -> int:
        return self.base + (1 if self.base_only else self.fh * (self.fw + 1))


def base_layout(grid: int) -> Layout:
    """An image of a multi-image sample under anyres_max_N: LLaVA-OneVision encodes only its base view (padded to a
    square, as `pad`), followed by one newline embedding: grid * grid + 1 tokens."""
    return Layout(0, 0, 0, 0, 0, 0, grid * grid)


def base_only(cap: int | None, n_images: int) -> bool:
    """Whether the images of a sample with `n_images` images get only their base view (OneVision's multi-image:
    LlavaOnevisionImageProcessor patches an image only when it is alone in its sample)."""
    return bool(cap) and n_images > 1


def unpadded_size(w: int, h: int, cur_h: int, cur_w: int) -> tuple[int, int]:
    """The feature map [cur_h, cur_w] of a picture padded to the grid, without the padding: (height, width)."""
    if w / h > cur_w / cur_h:
        new_h = int(round(h * (cur_w / w), 7))  # rounded first, as Hugging Face does: 0.9999999 is 1
        pad = (cur_h - new_h) // 2
        return cur_h - 2 * pad, cur_w
    new_w = int(round(w * (cur_h / h), 7))
    pad = (cur_w - new_w) // 2
    return cur_h, cur_w - 2 * pad


def layout(w: int, h: int, pinpoints: list[tuple[int, int]], tile: int, grid: int, max_tiles: int) -> Layout:
    """Layout of a `w` x `h` image with tiles of `tile` px whose features are `grid` x `grid` tokens."""
    ph, pw = best_resolution(w, h, pinpoints)
    rows, cols = ph // tile, pw // tile
    uh, uw = unpadded_size(w, h, rows * grid, cols * grid)
    fh, fw = uh, uw
    if max_tiles:
        times = math.sqrt(uh * uw / (max_tiles * grid * grid))
        if times > 1.1:
            fh, fw = int(uh // times), int(uw // times)
    return Layout(rows, cols, uh, uw, fh, fw, grid * grid)


def resize_and_pad(image: Image.Image, ph: int, pw: int) -> Image.Image:
    """Fit into (pw, ph) keeping the aspect ratio, centred on black."""
    w, h = image.size
    sw, sh = pw / w, ph / h
    if sw < sh:
        nw, nh = pw, min(math.ceil(h * sw), ph)
    else:
        nw, nh = min(math.ceil(w * sh), pw), ph
    canvas = Image.new("RGB", (pw, ph), (0, 0, 0))
    canvas.paste(image.resize((nw, nh), Image.Resampling.BICUBIC), ((pw - nw) // 2, (ph - nh) // 2))
    return canvas


def views(image: Image.Image, lay: Layout, tile: int, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """One image -> pixels [1 + rows * cols, 3, tile, tile]: the whole picture resized, then tiles row-major."""
    image = image.convert("RGB")
    big = resize_and_pad(image, lay.rows * tile, lay.cols * tile)
    tiles = [big.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(lay.rows) for c in range(lay.cols)]
    return preprocess_images([image.resize((tile, tile), Image.Resampling.BICUBIC), *tiles], tile, mean, std)


def merge(feats: torch.Tensor, lay: Layout, newline: torch.Tensor) -> torch.Tensor:
    """Projected view features [1 + rows * cols, g*g, d] -> [lay.tokens, d]: base tokens, then the unpadded
    (and capped) tile map row by row, each row ending with `newline` [d]; a base-only layout: base + newline."""
    g = math.isqrt(feats.shape[1])
    d = feats.shape[-1]
    base, tiles = feats[0], feats[1:]
    if lay.base_only:
        return torch.cat([base, newline.to(base.dtype)[None]], dim=0)
    x = tiles.reshape(lay.rows, lay.cols, g, g, d).permute(4, 0, 2, 1, 3).reshape(d, lay.rows * g, lay.cols * g)
    top = (x.shape[1] - lay.uh) // 2
    left = (x.shape[2] - lay.uw) // 2
    x = x[:, top : top + lay.uh, left : left + lay.uw]
    if (lay.fh, lay.fw) != (lay.uh, lay.uw):
        x = F.interpolate(x[None], size=(lay.fh, lay.fw), mode="bilinear")[0]
    x = torch.cat([x, newline.to(x.dtype)[:, None, None].expand(d, lay.fh, 1)], dim=2)
    return torch.cat([base, x.flatten(1).transpose(0, 1)], dim=0)
