"""Configuration dataclasses of the network and of training.

Everything is plain data (JSON/YAML-able) so a checkpoint can store the exact
configuration it was trained with and rebuild the same network.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lagc_hand.errors import InputError

from .data.augment import AugmentConfig

ATTENTION_KINDS = ("separable", "mhsa")
HEAD_KINDS = ("graph", "hamba")
GRAPH_OUTPUTS = ("posed_template", "direct")  # output forms of either head (graph.output, hamba.output)


@dataclass
class EncoderConfig:
    """MobileViTv3-style encoder.  Defaults = the XXS width (channels 16, 16, 24,
    64, 80, 128, 1x1 expansion to 512), transformer dims 64/80/96, FFN 2x,
    depths 2/4/3, 2x2 patches, 4 heads (MHSA only), MV2 expansion 2.

    attention: ``"separable"`` (MobileViTv2 linear attention, the paper's
    "linear attention"; default) or ``"mhsa"`` (the official XXS's standard
    multi-head self-attention)."""

    channels: tuple[int, ...] = (16, 16, 24, 64, 80, 128)
    exp_channels: int = 512
    transformer_dims: tuple[int, ...] = (64, 80, 96)
    ffn_dims: tuple[int, ...] = (128, 160, 192)
    depths: tuple[int, ...] = (2, 4, 3)
    mv2_expansion: int = 2
    patch: int = 2
    heads: int = 4
    attention: str = "separable"
    dropout: float = 0.05


@dataclass
class CompactConfig:
    """Compact single-hand heatmap module: 3x3-conv top-down decoder.
    dims: decoder channels at 8x8, 16x16, 32x32, 64x64."""

    dims: tuple[int, ...] = (96, 64, 48, 32)
    num_joints: int = 21


@dataclass
class GraphConfig:
    """Linear Graph module.  dims: vertex feature width per graph level (coarse
    to fine); image_dims: image-token width per level; gcn_blocks: GCN residual
    blocks per level; attention: ``"mhsa"`` (eqs. 7-8 use multi-head
    self-attention) or ``"separable"``; grid: image tokens per side (grid x grid);
    levels: graph levels used (3 = 63/126/252 for MANO); coarsen: HEM
    coarsenings of the full mesh (4 for MANO: 1008/504/252/126/63 padded);
    None = as many as it takes to bring the coarsest level to <= 80 real
    nodes (4 for MANO's 778 vertices).  output: ``"posed_template"`` (the
    coarse nodes are the template's, moved by regressed per-node deltas, then
    rotated and translated per hand, see :mod:`lagc_hand.net.anchor`; default)
    or ``"direct"`` (raw coordinates from the last linear layer, as IntagHand;
    collapses to a blob early in training, see that module).  submesh: a
    coordinate head on every coarser graph level too (IntagHand's sub-mesh
    outputs), used only in training for the per-level vertex loss."""

    dims: tuple[int, ...] = (128, 64, 32)
    image_dims: tuple[int, ...] = (64, 48, 32)
    gcn_blocks: int = 2
    heads: int = 4
    attention: str = "mhsa"
    grid: int = 8
    levels: int = 3
    coarsen: int | None = None
    injection_init: float = 0.9
    learn_upsample: bool = False
    dropout: float = 0.05
    output: str = "posed_template"
    submesh: bool = True


@dataclass
class HambaConfig:
    """Hamba graph-guided state-space head: d_model token width, d_state SSM
    state size, expand inner expansion, layers GSS blocks.  output: as
    :class:`GraphConfig`'s: ``"posed_template"`` (default; the fusion MLP
    regresses per-node deltas on the template plus a per-hand rotation and
    translation, :mod:`lagc_hand.net.anchor`) or ``"direct"`` (raw coordinates;
    the hand collapses early in training just as the graph decoder's did)."""

    d_model: int = 64
    d_state: int = 16
    expand: int = 2
    layers: int = 2
    d_conv: int = 3
    output: str = "posed_template"


@dataclass
class NetConfig:
    """The whole network.  head: ``"graph"`` (the paper's Linear Graph module)
    or ``"hamba"`` (Hamba GSS head regressing vertices from joint tokens)."""

    image_size: int = 256
    heatmap_size: int = 64
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    compact: CompactConfig = field(default_factory=CompactConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    hamba: HambaConfig = field(default_factory=HambaConfig)
    head: str = "graph"

    def validate(self) -> "NetConfig":
        if self.image_size != 256:
            raise InputError(f"image_size must be 256 (the encoder's 8x8 top level assumes it), got {self.image_size}")
        if self.encoder.attention not in ATTENTION_KINDS:
            raise InputError(f"encoder.attention must be one of {ATTENTION_KINDS}, got {self.encoder.attention!r}")
        if self.graph.attention not in ATTENTION_KINDS:
            raise InputError(f"graph.attention must be one of {ATTENTION_KINDS}, got {self.graph.attention!r}")
        if self.graph.output not in GRAPH_OUTPUTS:
            raise InputError(f"graph.output must be one of {GRAPH_OUTPUTS}, got {self.graph.output!r}")
        if self.hamba.output not in GRAPH_OUTPUTS:
            raise InputError(f"hamba.output must be one of {GRAPH_OUTPUTS}, got {self.hamba.output!r}")
        if self.head not in HEAD_KINDS:
            raise InputError(f"head must be one of {HEAD_KINDS}, got {self.head!r}")
        if len(self.encoder.channels) != 6 or len(self.encoder.transformer_dims) != 3:
            raise InputError("encoder.channels needs 6 entries and transformer_dims 3")
        if len(self.graph.dims) != self.graph.levels or len(self.graph.image_dims) != self.graph.levels:
            raise InputError("graph.dims and graph.image_dims need one entry per graph level")
        if len(self.compact.dims) != 4:
            raise InputError("compact.dims needs 4 entries (8, 16, 32, 64 px levels)")
        return self


@dataclass
class TrainConfig:
    """Training run.  data: ``"synthetic"`` or an InterHand2.6M root folder.
    Adam as the paper: lr 1e-4, x0.1 at half the epochs (``lr_decay_epoch``);
    the edge loss starts at ``edge_loss_epoch`` (default: half the epochs).

    batch_size: per process (with torchrun, the global batch is
    ``batch_size x WORLD_SIZE``).  workers: DataLoader worker processes.
    amp: mixed precision -- ``"bf16"``, ``"fp16"`` (with a GradScaler),
    ``"off"``; ``true`` = bf16 where the device supports it, else fp16 on CUDA,
    else off; ``false`` = off.  augment: crop/colour augmentation of
    InterHand2.6M training frames (:mod:`lagc_hand.net.data.augment`).
    index_dir: where the InterHand2.6M frame indexes are cached (default
    ``out_dir``).  submesh_weight: weight of the per-graph-level vertex L1."""

    net: NetConfig = field(default_factory=NetConfig)
    data: str = "synthetic"
    hand_model: str = "open"
    synthetic_train: int = 2000
    synthetic_val: int = 200
    synthetic_seed: int = 0
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-4
    lr_decay_epoch: int | None = None
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    edge_loss_epoch: int | None = None
    amp: bool | str = True
    seed: int = 0
    workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    index_dir: str | None = None
    submesh_weight: float = 100.0
    out_dir: str = "runs/lagc"
    checkpoint_every: int = 1
    max_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    sub = {"encoder": EncoderConfig, "compact": CompactConfig, "graph": GraphConfig, "hamba": HambaConfig, "net": NetConfig,
           "augment": AugmentConfig}
    for key, value in data.items():
        if key in sub and isinstance(value, dict):
            kwargs[key] = _build(sub[key], value, f"{where}.{key}")
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def net_config_from_dict(data: dict[str, Any]) -> NetConfig:
    return _build(NetConfig, data, "net").validate()


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, data, "config")
    cfg.net.validate()
    return cfg


def read_config_file(path) -> dict:
    """The mapping in a ``.yaml``/``.yml``/``.json`` config file; clear errors
    for missing files and bad syntax."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file not found: {p}")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise InputError(f"config must be .yaml, .yml or .json, got {p.name}")
    except (ValueError, ImportError) as exc:  # yaml.YAMLError subclasses Exception only
        raise InputError(f"cannot parse {p}: {exc}") from None
    except Exception as exc:  # yaml errors
        if type(exc).__module__.startswith("yaml"):
            raise InputError(f"cannot parse {p}: {exc}") from None
        raise
    if not isinstance(data, dict):
        raise InputError(f"{p} does not hold a mapping of settings")
    return data


def load_train_config(path) -> TrainConfig:
    """Read a ``.yaml``/``.yml``/``.json`` training config; clear errors for
    missing files, bad syntax and unknown keys."""
    return train_config_from_dict(read_config_file(path))
