"""The settings of a run, as typed dataclasses: one section per part of the system (the image tokenizer, the
encoder, the data, the training, the MAE pretraining) and `RunConfig` holding them. Every default is here, with
what the setting means. Settings with fixed choices are `Literal`s, checked when a section is made (`Checked`),
whether from a file, a command line or code. Reading, checking, presets and command lines: fuselip/config.py.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    pass


class Checked:
    """A config section whose `Literal` fields are checked when it is made (from a file, a command line or code):
    the one place a setting with fixed choices is validated."""
    SECTION: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, choices in _literal_fields(type(self)).items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{self.SECTION}.{name} must be one of {', '.join(map(repr, choices))}, "
                                  f"got {value!r}")


_LITERALS: dict[type, dict[str, tuple]] = {}


def _literal_fields(cls: Any) -> dict[str, tuple]:
    """{field: its choices} for the `Literal` fields of dataclass `cls` (worked out once per class)."""
    if cls not in _LITERALS:
        hints = typing.get_type_hints(cls)
        _LITERALS[cls] = {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(cls)
                          if typing.get_origin(hints[f.name]) is Literal}
    return _LITERALS[cls]


@dataclass
class TokenizerConfig(Checked):
    """A discrete image tokenizer (2-D VQ grid or 1-D TiTok) and its vector quantiser."""
    SECTION = "tokenizer"
    kind: Literal["grid", "patch", "titok"] = "grid"
    image_size: int = 64            # square input side in pixels
    codebook_size: int = 512
    code_dim: int = 64
    l2_codes: bool = False          # l2-normalised codes (TiTok-S style)
    commitment: float = 0.25        # beta of the commitment loss
    dead_code_threshold: float = 1.0  # codes used fewer times than this per window get re-seeded
    dead_code_every: int = 50       # training steps per usage window (0: never re-seed)
    dead_code_until: float = 0.8    # stop re-seeding after this fraction of the training steps (0: never stop)
    recent_codes: int = 8192        # encoder outputs kept to re-seed dead codes from
    codebook_weight: float = 1.0    # weight of the whole quantiser loss next to the reconstruction loss
    vq_warmup: float = 0.0          # fraction of the training steps during which the decoder sees the
                                    # continuous encoder output; at the switch every code is re-seeded from it
    encode_bf16: bool = True        # encode()/decode() under bf16 autocast on CPU (codes are looked up in fp32)
    # grid (convolutional VQ-VAE)
    stem_patch: int = 4             # pixels are first folded into channels by this factor (space-to-depth)
    channels: list[int] = field(default_factory=lambda: [64, 128])  # one per resolution; each after the first halves it
    res_blocks: int = 1             # residual blocks at the lowest resolution (encoder and decoder)
    decoder_res_blocks: int = 2     # residual blocks at the lowest resolution of the decoder
    decoder_stage_blocks: int = 1   # residual blocks at each higher decoder resolution
    decoder_channel_mult: float = 1.0  # decoder channels = encoder channels x this
    # titok (ViT encoder/decoder with latent tokens)
    patch_size: int = 8
    num_latent_tokens: int = 32
    width: int = 256
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    decoder_width: int = 0          # 0: same as the encoder (TiTok-BL uses a larger decoder)
    decoder_layers: int = 0
    decoder_heads: int = 0
    pixel_decoder_channels: list[int] = field(default_factory=list)  # [] : a linear map from each decoder
                                    # patch token to its pixels; [c0, c1, …]: a small convolutional pixel decoder
                                    # (like TiTok's second stage), c0 at the patch grid, doubling the side per entry
    pos_grid_rms: float = 0.0       # titok: 0: positions start as N(0, 0.02) (ViT); > 0: the encoder's patch positions
                                    # and the decoder's query positions start as a 2-D sine-cosine map of this RMS
                                    # (fuselip.positions.grid_sincos), still learned: where a patch is, is visible next to
                                    # its pixels from the first step
    # titok trained on proxy codes (TiTok's own two-stage recipe, fuselip/tokenizers/titok.py): the decoder predicts
    # the codes of a frozen grid tokenizer, whose decoder makes the pixels. The grid fields above (stem_patch,
    # channels, res_blocks, decoder_*) then describe that grid; training checks them against the checkpoint.
    proxy_checkpoint: str = ""      # the frozen grid tokenizer's folder ("": no proxy, the decoder makes pixels);
                                    # read by training only: a trained TiTok holds the grid's codebook and decoder
    proxy_codebook_size: int = 0    # the grid's codebook_size / code_dim / l2_codes
    proxy_code_dim: int = 0
    proxy_l2_codes: bool = False
    proxy_merge_cos: float = 1.0    # stage 1's targets: a grid code whose vector has cosine >= this with an earlier
                                    # code counts as that code (dead-code re-seeding leaves near-copies, e.g. of plain
                                    # white, that decode to the same pixels but make the exact target arbitrary);
                                    # 1.0: only exact copies
    pixel_finetune: float = 0.0     # stage 2: this last fraction of the steps trains the decoder (and the grid's
                                    # decoder) on pixels, from its soft codes; encoder and quantiser frozen


@dataclass
class EncoderConfig(Checked):
    """What every encoder of the project has: its kind, the transformer's size, the text context and the SigLIP
    loss's logit scale and bias. A run's encoder is a FuseLIPConfig or a LateFusionConfig, chosen by `kind`."""
    SECTION = "encoder"
    kind: Literal["fuselip", "siglip-sf", "siglip-mlf"] = "fuselip"
    width: int = 256
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    context_length: int = 180
    init_logit_scale: float = 2.302585092994046  # ln 10
    init_logit_bias: float = -10.0
    max_logit_scale: float = 4.605170185988092   # ln 100


@dataclass
class FuseLIPConfig(EncoderConfig):
    """The FuseLIP transformer (fuselip/model.py): one sequence of image and text tokens, with its MMM loss."""
    kind: Literal["fuselip"] = "fuselip"
    mmm_probability: float = 0.1
    mmm_weight: float = 0.25
    # MMM loss: one mean over the masked tokens of both sides ("tokens", a literal reading of the paper) or one mean
    # per side, added ("sides", the reference code)
    mmm_reduction: Literal["tokens", "sides"] = "tokens"
    # "shared": the masked pass also gives the contrastive embeddings (paper, reference code); "clean": they come
    # from a second, unmasked pass (the fused query and its target are seen whole; ~1.6x the compute of a step)
    mmm_pass: Literal["shared", "clean"] = "shared"
    # MMM softmax over the "full" joint vocabulary (paper) or only the ids "seen" in the training set (same targets,
    # ~100x cheaper head on CPU)
    mmm_vocab: Literal["full", "seen"] = "full"
    # "early": image and text tokens in ONE sequence (the paper's model); "score": the ablation that fuses late with
    # the same transformer, tokens and losses: image tokens and text tokens run as two separate sequences (they never
    # attend to each other), embedding = normalise(e_image + e_text) as SigLIP-SF
    fusion: Literal["early", "score"] = "early"
    length_buckets: int = 2         # training: each side's rows run in up to this many length buckets (1 or 2), each
                                    # trimmed to its own longest row (short texts stop paying for image-length padding)


@dataclass
class LateFusionConfig(EncoderConfig):
    """A late-fusion baseline (fuselip/baselines.py): SigLIP's two towers, fused by score (SF) or by a small
    transformer (MLF). width/layers/heads/mlp_ratio size EACH of the two towers."""
    kind: Literal["siglip-sf", "siglip-mlf"] = "siglip-sf"
    vision_patch_size: int = 8
    # the ViT's input layer: "patch" (open_clip's one strided conv, the paper's ViT) or "conv" (a stack of 3x3
    # stride-2 convs, Xiao et al. 2021 "Early convolutions help transformers see better"): same token grid, learns
    # faster from little data
    vision_stem: Literal["patch", "conv"] = "patch"
    vision_init: str = ""           # a ViT pretrained by train/pretrain_vision.py (masked autoencoder) to start the
                                    # image tower from ("": from scratch, the paper's baselines); training only
    embed_dim: int = 0              # projection of both towers = fusion width (0: same as width)
    fusion_layers: int = 4          # MLF: pre-LN transformer over the 2-token [image, text] sequence
    fusion_heads: int = 0           # MLF: attention heads of the fusion and the pooling (0: same as heads)


ENCODERS: tuple[type[EncoderConfig], ...] = (FuseLIPConfig, LateFusionConfig)  # a run's encoder is one, by its kind


@dataclass
class DataConfig(Checked):
    """Which worlds and tasks a run trains on, and how many of each."""
    SECTION = "data"
    worlds: list[str] = field(default_factory=lambda: ["shapes", "emoji"])
    world_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    task_weights: dict[str, float] = field(default_factory=lambda: {
        "caption": 0.25, "tgit": 0.3, "vqa": 0.1, "crop": 0.05, "position": 0.25, "edit": 0.05})
    image_size: int = 64
    train_pairs: int = 150_000      # size of the generated (and token-cached) training set
    group_size: int = 6             # most pairs in one hard-negative group (transformations/edits/questions of one image)
    # TGIT groups (fuselip.data.tasks.tgit_instructions): "sampled" (up to group_size of one kind), "full" (every
    # evaluation candidate of the kind is a target, the unchanged image included), "reference" (the reference code's
    # groups)
    tgit_groups: Literal["sampled", "full", "reference"] = "sampled"
    # what the position twins differ in (fuselip.data.tasks.twin_attribute): "appearance": colour where a world has
    # colours, else two emoji of one category; "colour": colour, else size; "size": size
    position_twins: Literal["appearance", "colour", "size"] = "appearance"
    objects: list[int] = field(default_factory=list)  # objects per scene, each scene drawing its count uniformly
                                    # from this list (1..9, one per cell; e.g. [1, …, 9] for the bottleneck study,
                                    # fuselip/bottleneck.py); [] = each world's own range (shapes 1–3, emoji 2–4)
    curriculum_first: list[str] = field(default_factory=list)  # a curriculum: its first phase draws batches only
                                    # from pairs of these worlds or tasks (e.g. ["shapes"] or ["caption"]) ...
    curriculum_until: float = 0.0   # ... for this fraction of train.steps; then every pair (0: no curriculum)
    val_items: int = 200            # evaluation items per task for periodic validation
    seed: int = 0
    tokenizer_images: int = 30_000  # image pool a tokenizer trains on (sample_images, train split)
    tokenizer_val_images: int = 256  # validation images per world for a tokenizer run
    csv: str = ""                   # optional user data: CSV of (filepath, title)
    image_folder: str = ""          # optional user data: folder of images


@dataclass
class TrainConfig(Checked):
    """The training engine: optimiser, schedule, precision, checkpoints."""
    SECTION = "train"
    batch_size: int = 128
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    warmup_steps: int = 100
    grad_clip: float = 1.0
    # rows whose right sides are identical: "positive" of each other, or "negative" (only a row's own target is
    # positive, as in the reference code)
    duplicates: Literal["positive", "negative"] = "positive"
    # auto: bf16 autocast where bf16 is faster than fp32 (CUDA; a CPU with AMX or AVX512-BF16), else fp32 (a CPU
    # without them emulates bf16, about 5x slower than fp32): fuselip.optim.resolve_precision
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    seed: int = 0
    log_every: int = 10
    val_every: int = 500
    checkpoint_every: int = 200
    out_dir: str = "runs/fuselip-tiny"
    device: str = "cpu"
    threads: int = 0                # 0: let torch decide


@dataclass
class MAEConfig(Checked):
    """Masked-autoencoder pretraining of a baseline's ViT (fuselip/mae.py; He et al. 2022)."""
    SECTION = "mae"
    mask_ratio: float = 0.75        # share of the patches the encoder never sees
    decoder_width: int = 128        # the light decoder that is thrown away after pretraining
    decoder_layers: int = 2
    decoder_heads: int = 4
    norm_pix_loss: bool = True      # targets: each patch's pixels standardised by its own mean and std


# Knobs removed after the experiments that used them changed no result (docs/results/README.md tells them): each with
# the default it always had. An old config (a shipped checkpoint's, a run's run_config.json) may still hold one:
# at that value it is dropped, at any other value loading stops, since this package cannot rebuild that run.
REMOVED_FIELDS_LAST_AT = "36e4176"  # the last commit that has them: check it out to rerun such a run
REMOVED_FIELDS: dict[type, dict[str, Any]] = {
    EncoderConfig: {"pos_init": "normal"},  # (and so of both encoders)
    DataConfig: {"position_size_questions": False, "position_counterfactuals": False,
                 "position_where_questions": False, "crop_location_queries": 0.0},
}


@dataclass
class RunConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    encoder: FuseLIPConfig | LateFusionConfig = field(default_factory=FuseLIPConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mae: MAEConfig = field(default_factory=MAEConfig)
    tokenizer_checkpoint: str = ""  # frozen image tokenizer that a FuseLIP run reads images with: a checkpoint
                                    # folder, or "untrained" (fuselip.model.build_fuselip)
