"""ImageBind (Girdhar et al., 2023): six modality towers (vision, text, audio, depth, thermal, IMU) that each map
their input into one joint embedding space; `imagebind_huge` and smaller configurable variants.

Each modality: a stem cuts the input into patch tokens, a class token and learned positions are added, a
pre-norm transformer trunk runs, the head takes the class token (text: the end-of-text token) through
LayerNorm and a bias-free Linear into the joint width, and the post-processing L2-normalises and multiplies
by a fixed per-modality logit scale (text: a learned one). Inputs with a clip axis (video and audio,
[b, clips, ...]) are embedded per clip and averaged. `load_imagebind_state` reads the published
`imagebind_huge.pth` (torch.load(weights_only=True)) and maps its key names to ours (`map_published_key`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")


@dataclass
class TowerConfig:
    """Width, depth and heads of one modality's trunk; `drop_path` is the last block's stochastic-depth rate."""

    dim: int
    layers: int
    heads: int
    drop_path: float = 0.0


def _huge_towers() -> dict[str, TowerConfig]:
    return {"vision": TowerConfig(1280, 32, 16), "text": TowerConfig(1024, 24, 16),
            "audio": TowerConfig(768, 12, 12, 0.1), "depth": TowerConfig(384, 12, 8),
            "thermal": TowerConfig(768, 12, 12), "imu": TowerConfig(512, 6, 8, 0.7)}


@dataclass
class ImageBindConfig:
    """Architecture of an ImageBind model. The defaults are `imagebind_huge` (the released checkpoint)."""

    out_dim: int = 1024
    towers: dict[str, TowerConfig] = field(default_factory=_huge_towers)
    image_size: int = 224
    video_frames: int = 2  # a still image is repeated into a 2-frame clip; a video clip has 2 frames
    patch: tuple[int, int, int] = (2, 14, 14)  # vision stem: (time, height, width) kernel = stride
    audio_mels: int = 128
    audio_frames: int = 204  # 2 s of 10 ms frames, padded / cut
    audio_kernel: int = 16
    audio_stride: int = 10
    depth_patch: int = 16
    thermal_patch: int = 16
    imu_channels: int = 6  # accelerometer xyz + gyroscope xyz
    imu_length: int = 2000
    imu_kernel: int = 8
    text_context: int = 77
    text_vocab: int = 49408
    # fixed logit scales applied after normalisation (text's is learned, initialised to 1 / 0.07)
    scales: dict[str, float] = field(default_factory=lambda: {"audio": 20.0, "depth": 5.0, "thermal": 10.0,
                                                               "imu": 5.0})

    @classmethod
    def from_dict(cls, d: dict) -> ImageBindConfig:
        """Config kwargs (as in a recipe's `vision_config`): `variant: huge|tiny` then overrides; `towers` may
        give partial dicts per modality (e.g. {vision: {dim: 64}})."""
        d = {k: v for k, v in d.items() if k not in ("model_type",)}
        base = imagebind_tiny_config() if d.pop("variant", "huge") == "tiny" else cls()
        towers = {m: dataclasses.replace(t) for m, t in base.towers.items()}
        for m, over in (d.pop("towers", None) or {}).items():
            if m not in towers:
                raise ValueError(f"imagebind config: unknown modality '{m}' in towers (known: {', '.join(MODALITIES)})")
            towers[m] = dataclasses.replace(towers[m], **over)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"imagebind config: unknown keys {unknown}")
        if "patch" in d:
            d["patch"] = tuple(d["patch"])
        return dataclasses.replace(base, towers=towers, **d)


def imagebind_tiny_config(dim: int = 32, layers: int = 2, heads: int = 2, out_dim: int = 32) -> ImageBindConfig:
    """A small ImageBind for tests and the quick start: every tower `dim` wide, `layers` deep; same input sizes."""
    return ImageBindConfig(out_dim=out_dim, towers={m: TowerConfig(dim, layers, heads) for m in MODALITIES})


class Attention(nn.Module):
    """Multi-head self-attention with packed q/k/v weights and, optionally, one learned extra key/value
    position (`bias_k`, `bias_v`) every query can attend to. x [b, l, d] -> [b, l, d]."""

    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_k = nn.Parameter(torch.zeros(1, 1, dim)) if bias_kv else None
        self.bias_v = nn.Parameter(torch.zeros(1, 1, dim)) if bias_kv else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(b, 1, d)], dim=1)
            v = torch.cat([v, self.bias_v.expand(b, 1, d)], dim=1)
            if mask is not None:
                mask = F.pad(mask, (0, 1))
        h = self.heads
        q, k, v = (t.unflatten(-1, (h, d // h)).transpose(1, 2) for t in (q, k, v))  # [b, h, l, d/h]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, 4x GELU MLP), with per-sample stochastic depth."""

    def __init__(self, dim: int, heads: int, bias_kv: bool, drop_path: float):
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, bias_kv)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop_path = drop_path

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        return x * x.new_empty(x.shape[0], 1, 1).bernoulli_(keep) / keep

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self._drop(self.attn(self.norm_1(x), mask))
        return x + self._drop(self.mlp(self.norm_2(x)))


class Trunk(nn.Module):
    """Blocks of one modality (+ a LayerNorm before them for vision). tokens [b, l, d] -> [b, l, d]."""

    def __init__(self, cfg: TowerConfig, pre_norm: bool, bias_kv: bool):
        super().__init__()
        self.pre_norm = nn.LayerNorm(cfg.dim, eps=1e-6) if pre_norm else None
        rates = torch.linspace(0, cfg.drop_path, cfg.layers, device="cpu").tolist()  # grows linearly with depth
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, bias_kv, r) for r in rates)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre_norm is not None:
            x = self.pre_norm(x)
        for blk in self.blocks:
            x = blk(x, mask)
        return x


class PatchStem(nn.Module):
    """Patches -> tokens, then a class token and learned positions: input -> [b, 1 + patches, d].

    `proj` is a Conv3d (vision: an image [b, 3, H, W] becomes a clip by repeating it `frames` times), a Conv2d
    (audio, depth, thermal: [b, 1, H, W]) or a Linear over IMU windows ([b, 6, L] cut into L / k windows of
    6 * k values); `norm` (all but vision) is a LayerNorm after it."""

    def __init__(self, proj: nn.Module, dim: int, n_patches: int, norm: bool, frames: int = 0, window: int = 0):
        super().__init__()
        self.proj = proj
        self.norm = nn.LayerNorm(dim) if norm else None
        self.frames, self.window = frames, window
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n_patches, dim) * dim**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames:
            if x.dim() == 4:
                x = x.unsqueeze(2)  # [b, 3, 1, H, W]
            if x.shape[2] == 1:
                x = x.expand(-1, -1, self.frames, -1, -1)
        if self.window:  # [b, c, L] -> [b, L / k, c * k]: window-major, channel then time inside a window
            x = x.unfold(-1, self.window, self.window).permute(0, 2, 1, 3).flatten(2)
            tokens = self.proj(x)
        else:
            tokens = self.proj(x).flatten(2).transpose(1, 2)  # [b, d, (t) h w] -> [b, patches, d]
        if self.norm is not None:
            tokens = self.norm(tokens)
        if tokens.shape[1] + 1 != self.pos_embed.shape[1]:
            raise ValueError(f"imagebind: input {tuple(x.shape)} gives {tokens.shape[1]} patches, the model has "
                             f"positions for {self.pos_embed.shape[1] - 1}")
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed


class TextStem(nn.Module):
    """Token ids [b, 77] -> token embeddings + learned positions [b, 77, d] (causal attention in the trunk)."""

    def __init__(self, vocab: int, context: int, dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, context, dim) * 0.01)
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu(1), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids) + self.pos_embed


def _stems(c: ImageBindConfig) -> dict[str, nn.Module]:
    t = c.towers
    grid = c.image_size // c.patch[1]
    vision = nn.Conv3d(3, t["vision"].dim, c.patch, stride=c.patch, bias=False)
    a_h = (c.audio_mels - c.audio_kernel) // c.audio_stride + 1
    a_w = (c.audio_frames - c.audio_kernel) // c.audio_stride + 1
    audio = nn.Conv2d(1, t["audio"].dim, c.audio_kernel, stride=c.audio_stride, bias=False)
    return {
        "vision": PatchStem(vision, t["vision"].dim, (c.video_frames // c.patch[0]) * grid * grid, False,
                            frames=c.video_frames),
        "text": TextStem(c.text_vocab, c.text_context, t["text"].dim),
        "audio": PatchStem(audio, t["audio"].dim, a_h * a_w, True),
        "depth": PatchStem(nn.Conv2d(1, t["depth"].dim, c.depth_patch, stride=c.depth_patch, bias=False),
                           t["depth"].dim, (c.image_size // c.depth_patch) ** 2, True),
        "thermal": PatchStem(nn.Conv2d(1, t["thermal"].dim, c.thermal_patch, stride=c.thermal_patch, bias=False),
                             t["thermal"].dim, (c.image_size // c.thermal_patch) ** 2, True),
        "imu": PatchStem(nn.Linear(c.imu_channels * c.imu_kernel, t["imu"].dim, bias=False), t["imu"].dim,
                         c.imu_length // c.imu_kernel, True, window=c.imu_kernel),
    }


class Head(nn.Module):
    """Trunk output [b, l, d] -> joint embedding [b, out]: LayerNorm, the class token (text: position
    `select`, the end-of-text token), dropout (IMU: 0.5 in training), bias-free Linear."""

    def __init__(self, dim: int, out: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, out, bias=False)

    def forward(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        x = x[:, 0] if select is None else x[torch.arange(x.shape[0], device=x.device), select]
        return self.proj(self.dropout(self.norm(x)))


class ImageBindModel(nn.Module):
    """`embed(modality, x, scale=True) -> [b, out_dim]`; `forward({modality: x}) -> {modality: [b, out_dim]}`.

    Inputs: vision [b, 3, S, S] images or [b, 3, 2, S, S] clips; text ids [b, 77]; audio [b, 1, 128, 204]
    log-mel; depth / thermal [b, 1, S, S]; imu [b, 6, 2000]. A leading clip axis (vision [b, c, 3, 2, S, S],
    audio [b, c, 1, 128, 204]) is embedded per clip and averaged after post-processing.
    """

    def __init__(self, cfg: ImageBindConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ImageBindConfig()
        missing = [m for m in MODALITIES if m not in cfg.towers]
        if missing:
            raise ValueError(f"imagebind config: no tower for {missing}")
        self.stems = nn.ModuleDict(_stems(cfg))
        self.trunks = nn.ModuleDict({m: Trunk(cfg.towers[m], pre_norm=m == "vision",
                                              bias_kv=m not in ("vision", "text")) for m in MODALITIES})
        self.heads = nn.ModuleDict({m: Head(cfg.towers[m].dim, cfg.out_dim, 0.5 if m == "imu" else 0.0)
                                    for m in MODALITIES})
        # log of each modality's logit scale: fixed buffers, except text's learned parameter (capped at 100)
        self.text_log_scale = nn.Parameter(torch.tensor(1 / 0.07).log())
        for m, s in cfg.scales.items():
            self.register_buffer(f"{m}_log_scale", torch.tensor(float(s)).log())
        for m in self.trunks.values():
            m.apply(_init_trunk)

    @property
    def out_dim(self) -> int:
        return self.cfg.out_dim

    def logit_scale(self, modality: str) -> torch.Tensor | None:
        """The multiplier after normalisation (None for vision)."""
        log = getattr(self, f"{modality}_log_scale", None)
        return None if log is None else log.exp().clamp(max=100.0)

    def embed(self, modality: str, x: torch.Tensor, scale: bool = True) -> torch.Tensor:
        """One modality's inputs -> joint embeddings [b, out_dim] (`scale=False`: normalised, not scaled)."""
        if modality not in self.stems:
            raise KeyError(f"imagebind has no modality '{modality}' (known: {', '.join(MODALITIES)})")
        clips = (modality == "vision" and x.dim() == 6) or (modality == "audio" and x.dim() == 5)
        if clips:
            b, c = x.shape[:2]
            x = x.flatten(0, 1)
        x = x.to(self.stems[modality].pos_embed.dtype) if modality != "text" else x
        tokens = self.stems[modality](x)
        mask = self.stems["text"].mask if modality == "text" else None
        h = self.trunks[modality](tokens, mask)
        out = F.normalize(self.heads[modality](h, x.argmax(dim=-1) if modality == "text" else None), dim=-1)
        s = self.logit_scale(modality) if scale else None
        if s is not None:
            out = out * s
        return out.view(b, c, -1).mean(1) if clips else out

    def forward(self, inputs: dict[str, torch.Tensor], scale: bool = True) -> dict[str, torch.Tensor]:
        return {m: self.embed(m, x, scale) for m, x in inputs.items()}


def _init_trunk(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


# published key -> ours, applied in order (the published model: modality_preprocessors / trunks / heads /
# postprocessors ModuleDicts, as in ImageBind's models/imagebind_model.py and multimodal_preprocessors.py)
_KEY_RULES: list[tuple[str, str]] = [
    (r"^modality_preprocessors\.vision\.rgbt_stem\.proj\.1\.", "stems.vision.proj."),
    (r"^modality_preprocessors\.(audio|thermal)\.rgbt_stem\.proj\.", r"stems.\1.proj."),
    (r"^modality_preprocessors\.(audio|thermal)\.rgbt_stem\.norm_layer\.", r"stems.\1.norm."),
    (r"^modality_preprocessors\.depth\.depth_stem\.proj\.", "stems.depth.proj."),
    (r"^modality_preprocessors\.depth\.depth_stem\.norm_layer\.", "stems.depth.norm."),
    (r"^modality_preprocessors\.imu\.imu_stem\.proj\.", "stems.imu.proj."),
    (r"^modality_preprocessors\.imu\.imu_stem\.norm_layer\.", "stems.imu.norm."),
    (r"^modality_preprocessors\.(\w+)\.pos_embedding_helper\.pos_embed$", r"stems.\1.pos_embed"),
    (r"^modality_preprocessors\.(\w+)\.(cls_token|pos_embed|token_embedding\.weight)$", r"stems.\1.\2"),
    (r"^modality_trunks\.vision\.pre_transformer_layer\.0\.", "trunks.vision.pre_norm."),
    (r"^modality_trunks\.(\w+)\.blocks\.(\d+)\.attn\.in_proj_", r"trunks.\1.blocks.\2.attn.qkv."),
    (r"^modality_trunks\.(\w+)\.blocks\.(\d+)\.attn\.out_proj\.", r"trunks.\1.blocks.\2.attn.proj."),
    (r"^modality_trunks\.(\w+)\.blocks\.(\d+)\.mlp\.fc1\.", r"trunks.\1.blocks.\2.mlp.0."),
    (r"^modality_trunks\.(\w+)\.blocks\.(\d+)\.mlp\.fc2\.", r"trunks.\1.blocks.\2.mlp.2."),
    (r"^modality_trunks\.", "trunks."),
    (r"^modality_heads\.text\.proj\.0\.", "heads.text.norm."),
    (r"^modality_heads\.text\.proj\.1\.", "heads.text.proj."),
    (r"^modality_heads\.(\w+)\.0\.", r"heads.\1.norm."),
    (r"^modality_heads\.imu\.3\.", "heads.imu.proj."),
    (r"^modality_heads\.(\w+)\.2\.", r"heads.\1.proj."),
    (r"^modality_postprocessors\.(\w+)\.1\.log_logit_scale$", r"\1_log_scale"),
]
_DROPPED = re.compile(r"^modality_preprocessors\.text\.mask$")  # the causal mask: rebuilt, not loaded


def map_published_key(key: str) -> str | None:
    """A key of the published ImageBind state dict -> our parameter name (None: a buffer we rebuild)."""
    if _DROPPED.match(key):
        return None
    for pat, rep in _KEY_RULES:
        new, n = re.subn(pat, rep, key)
        if n:
            return new
    raise KeyError(f"unrecognised ImageBind key '{key}'")


def convert_published_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The published state dict (ImageBind's module names) -> ours; the bias_k/v shapes are kept ([1, 1, d])."""
    out = {}
    for k, v in state.items():
        new = map_published_key(k)
        if new is not None:
            out[new] = v
    return out


def read_imagebind_state(path: str | Path) -> dict[str, torch.Tensor]:
    """`imagebind_huge.pth` (published key names, or polyvlm's) -> a state dict under our names, read with
    torch.load(weights_only=True); errors name the file."""
    path = Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"ImageBind checkpoint '{path}' does not exist") from None
    except Exception as e:  # a pickle that needs arbitrary code, or not a torch file at all
        raise ValueError(f"{path}: not a weights-only torch state dict ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    if any(k.startswith("modality_") for k in state):
        try:
            state = convert_published_state(state)
        except KeyError as e:
            raise ValueError(f"{path}: {e.args[0]}") from None
    return state


def check_fits(cfg: ImageBindConfig, state: dict[str, torch.Tensor], path: str | Path = "") -> None:
    """Raise ValueError naming `path` and the first differences unless `state` fits the architecture `cfg`
    (compared on the meta device: nothing is allocated)."""
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in ImageBindModel(cfg).state_dict().items()}
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shapes = [f"{k} {tuple(state[k].shape)} vs {want[k]}" for k in want if k in state and tuple(state[k].shape) != want[k]]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: does not fit this ImageBind architecture (out_dim {cfg.out_dim}, vision width "
                         f"{cfg.towers['vision'].dim}); missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"shapes {shapes[:3]} ({len(missing)} / {len(unexpected)} / {len(shapes)} in all)")


def load_imagebind_state(model: ImageBindModel, path: str | Path) -> None:
    """Load `imagebind_huge.pth` (or a polyvlm-named state) into `model`; errors name the file and the keys."""
    state = read_imagebind_state(path)
    check_fits(model.cfg, state, path)
    model.load_state_dict(state)
