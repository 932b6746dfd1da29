"""Every training config, each defined once with its defaults (torch-free: the CLI shows them).

`EncoderConfig` and its subclasses describe an encoder (`asdict()` goes into the checkpoint and
rebuilds the model), `ObjectiveConfig` its loss, `TrainConfig` one run: both configs and the loop
around them. `train_config(**options)` builds a TrainConfig from flat option names.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from training.architecture import Architecture, ArchitectureError

LOSSES = ("ce", "bce", "sampled")


@dataclass
class EncoderConfig:
    """Hyper-parameters common to every encoder; `asdict()` of a subclass goes into checkpoints.

    `n_items` comes from the data set: 0 in a TrainConfig, set by `run_training`."""

    n_items: int = 0
    dim: int = 64
    layers: int = 2
    heads: int = 1
    dropout: float = 0.2
    max_len: int = 50
    # dropout on the attention weights; None: `dropout`. Sampling it over the (B, heads, L, L)
    # weights is most of a step's cost at long max_len, and the fused attention kernel does it no
    # faster: at 0 a max_len 200 epoch is ~1.7x faster (docs/benchmarks.md)
    attention_dropout: float | None = None
    arch: str = ""
    # A searched trunk (`intentrec search`, training/architecture.py) as its JSON form; None:
    # the hand-designed trunk of `layers` SASRec blocks (`layers` is unused when this is set).
    trunk: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.trunk is not None:
            try:
                Architecture.from_dict(self.trunk)
            except ArchitectureError as exc:
                problems.append(f"trunk: {exc}")
        if self.n_items < 0:
            problems.append(f"n_items must be >= 0, got {self.n_items}")
        if self.dim < 1 or self.heads < 1 or self.dim % self.heads:
            problems.append(f"dim ({self.dim}) must be a positive multiple of heads ({self.heads})")
        if self.layers < 0:
            problems.append(f"layers must be >= 0, got {self.layers}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.attention_dropout is not None and not 0.0 <= self.attention_dropout < 1.0:
            problems.append(f"attention_dropout must be in [0, 1), got {self.attention_dropout}")
        if self.max_len < 1:
            problems.append(f"max_len must be >= 1, got {self.max_len}")
        if problems:
            raise ValueError("invalid model config: " + "; ".join(problems))

    @property
    def attention_dropout_rate(self) -> float:
        """The dropout applied to attention weights: `attention_dropout`, else `dropout`."""
        return self.dropout if self.attention_dropout is None else self.attention_dropout


@dataclass
class SASRecConfig(EncoderConfig):
    arch: str = "sasrec"


@dataclass
class DisenConfig(EncoderConfig):
    arch: str = "disen"
    intents: int = 4
    temperature: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.intents < 1:
            raise ValueError(f"invalid model config: intents must be >= 1, got {self.intents}")
        if self.temperature <= 0:
            raise ValueError(
                f"invalid model config: temperature must be > 0, got {self.temperature}"
            )


@dataclass(frozen=True)
class ObjectiveConfig:
    loss: str = "ce"
    negatives: int = 1  # bce: per positive; sampled: uniform negatives shared by the batch
    # chosen on ml-100k validation by `bench train --preset tune` (docs/benchmarks.md)
    s2s_weight: float = 0.01
    s2s_lambda: float = 0.6
    s2i_only: bool = False
    future_len: int = 10  # longest future subsequence of the S2S loss
    # share of the earlier window's prefixes that get an S2I prediction (None: 1 / intents, which
    # keeps the K-intent catalog softmax as cheap as SASRec's); the cut itself always does
    s2i_share: float | None = None
    # DisenSeq S2I logit scale (the paper's 1 / sqrt(D) measured worse here, see the module doc)
    s2i_scale: float = 1.0
    # ce / sampled: this share of each target's probability spread evenly over all candidates,
    # so that a catalog softmax stops pushing every other item towards zero probability
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negatives < 0 or (self.loss == "bce" and self.negatives < 1):
            problems.append(f"negatives must be >= 1 for bce and >= 0, got {self.negatives}")
        if not 0.0 < self.s2s_lambda <= 1.0:
            problems.append(f"s2s_lambda must be in (0, 1], got {self.s2s_lambda}")
        if self.s2s_weight < 0:
            problems.append(f"s2s_weight must be >= 0, got {self.s2s_weight}")
        if self.future_len < 1:
            problems.append(f"future_len must be >= 1, got {self.future_len}")
        if self.s2i_scale <= 0:
            problems.append(f"s2i_scale must be > 0, got {self.s2i_scale}")
        if not 0.0 <= self.label_smoothing < 1.0:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        elif self.label_smoothing and self.loss == "bce":
            problems.append("label_smoothing applies to the ce and sampled losses, not bce")
        if self.s2i_share is not None and not 0.0 < self.s2i_share <= 1.0:
            problems.append(f"s2i_share must be in (0, 1], got {self.s2i_share}")
        if problems:
            raise ValueError("invalid objective config: " + "; ".join(problems))


ENCODER_CONFIGS: dict[str, type[EncoderConfig]] = {"sasrec": SASRecConfig, "disen": DisenConfig}

# Each model's defaults where they differ from the classes': the best trial of a 20-trial
# `intentrec tune` on ml-100k validation (docs/benchmarks.md, "Hyper-parameter search"; test
# never looked at), values rounded to two significant digits. Options given explicitly (command
# line, --config file, --set) always win.
TUNED_DEFAULTS: dict[str, dict[str, Any]] = {
    # The references' dropout and heads at the class's dim 64: it validated above every other
    # max_len 50 setting, the search's best included (.1063 against .1023 for dim 256, 3 blocks,
    # BCE, whose served encoder also falls under the 500 req/s serving target). Half the windows
    # at a random earlier position: with only the latest 50 actions trained on, most of a long
    # history never was (validation .1124 at .5 against .1072 at .2 and .1064 at 1, seed 1);
    # the extra data keeps a run improving past 200 epochs (best epoch 252). 3-seed figures in
    # docs/benchmarks.md. Batch size 32: four times the optimiser steps an epoch reach the same
    # validation (.1247 against .1237 at 128, 3 seeds) in 200-220 epochs instead of 290-370, so
    # a run takes 7-9 min instead of 13-16 at about the same cost an epoch. Label smoothing .2:
    # validation .1320 against .1247 (3 seeds; .1 gave .1296, .3 .1324, level with .2)
    "sasrec": {
        "dropout": 0.5,
        "heads": 2,
        "recent_window_share": 0.5,
        "epochs": 400,
        "batch_size": 32,
        "label_smoothing": 0.2,
    },
    # K = 1 won: no trial with 2 or 4 intents came close (docs/benchmarks.md); S2S weight and
    # lambda drawn as .01 and .6, the class defaults. Length batches validated level (.1203
    # against .1175, within a std, 3 seeds) and make a step of this trunk 3-4x faster on
    # short-history data (Amazon Beauty)
    "disen": {
        "dim": 128,
        "layers": 4,
        "heads": 2,
        "dropout": 0.15,
        "max_len": 50,
        "intents": 1,
        "loss": "bce",
        "lr": 0.0011,
        "length_batches": True,
    },
}


# Validation NDCG@10 over a few hundred users moves by more than a real gain does between epochs:
# on ml-100k (943 users) DisenSeq sits at popularity level for its first 10-30 epochs and
# SASRec's best epoch came 100 epochs after one that patience 10 would have stopped at
# (docs/benchmarks.md). Over tens of thousands of users it is smooth and an epoch is many more
# optimiser steps: on Amazon Beauty (22k users) SASRec reaches a plateau in 20-30 epochs and then
# creeps up by about 1 % over the next 20-30; patience 10 stops on that plateau, 20 or more
# epochs before patience 20 would (RecBole's default is 10 as well). `--patience` trades back.
SMALL_VALIDATION_PATIENCE = 40
LARGE_VALIDATION_PATIENCE = 10
LARGE_VALIDATION_USERS = 10_000


def patience_for(patience: int | None, valid_users: int) -> int:
    """The patience a run uses: the configured one, else the default for its validation size."""
    if patience is not None:
        return patience
    if valid_users >= LARGE_VALIDATION_USERS:
        return LARGE_VALIDATION_PATIENCE
    return SMALL_VALIDATION_PATIENCE


def lr_decay_patience_for(lr_decay_patience: int | None, patience: int) -> int:
    """Evaluations without gain before the learning rate decays: the configured number, else a
    quarter of the stopping patience."""
    if lr_decay_patience is not None:
        return lr_decay_patience
    return max(1, patience // 4)


@dataclass
class TrainConfig:
    """One training run: the encoder's config, its objective's, and the loop around them. Each
    is defined once with its defaults; `train_config` builds one from flat option names."""

    data: str
    # SASRecConfig or DisenConfig; its n_items is the data set's, set when the data is loaded
    model: EncoderConfig = field(default_factory=SASRecConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    fmt: str | None = None
    k_core: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 200
    # evaluations without a validation gain before stopping; None: by the validation set's
    # size (`patience_for`)
    patience: int | None = None
    # the learning rate is multiplied by `lr_decay` after `lr_decay_patience` evaluations
    # without a validation gain (1: constant); None: a quarter of the stopping patience, so
    # that a run tries a smaller step a few times before it gives up
    lr_decay: float = 1.0
    lr_decay_patience: int | None = None
    seed: int = 42
    eval_every: int = 1
    history: str = "masked"
    # share of epochs' windows that end at the user's most recent training action; the rest end
    # at a random earlier position so that long histories contribute more than one example
    recent_window_share: float = 1.0
    # every epoch trains on every action: each history cut into consecutive windows ending at
    # its latest action (`history_windows`; recent_window_share is then unused)
    whole_history: bool = False
    # batches of windows of about the same length (`shuffled_batches`): much less padding on
    # short-history data, at the price of weighting short windows' predictions more
    length_batches: bool = False
    # share of the catalog held out of training as if it arrived afterwards (0 = none): how
    # new items are ranked, e.g. by `export --with-text-items`, is then measurable on test
    new_items: float = 0.0
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    # auto: the first CUDA GPU when torch sees one, else the CPU
    device: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.lr_decay <= 1.0:
            problems.append(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.lr_decay_patience is not None and self.lr_decay_patience < 1:
            problems.append(f"lr_decay_patience must be >= 1, got {self.lr_decay_patience}")
        if problems:
            raise ValueError("invalid training options: " + "; ".join(problems))

    def loop_options(self) -> dict[str, Any]:
        """The run's own options (data, optimiser, stopping), without the two configs."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NESTED}


_NESTED = ("model", "objective")
# Encoder fields that are not options: n_items comes from the data set, `model` names the arch.
_NOT_OPTIONS = {"n_items", "arch"}


def option_names(arch: str) -> dict[str, set[str]]:
    """The flat option names of a run, by the config that owns them: the encoder's (for `arch`),
    the objective's and the loop's. `model` itself names the architecture."""
    if arch not in ENCODER_CONFIGS:
        raise ValueError(f"model must be one of {sorted(ENCODER_CONFIGS)}, got {arch!r}")
    encoder_cls = ENCODER_CONFIGS[arch]
    return {
        "model": {f.name for f in fields(encoder_cls)} - _NOT_OPTIONS,
        "objective": {f.name for f in fields(ObjectiveConfig)},
        "loop": {f.name for f in fields(TrainConfig)} - set(_NESTED),
    }


def known_options(arch: str) -> set[str]:
    """Every flat option name of `arch` training, `model` included."""
    return set().union(*option_names(arch).values()) | {"model"}


def flat_options(config: TrainConfig) -> dict[str, Any]:
    """The inverse of `train_config`: a run's options by their flat names."""
    encoder = {k: v for k, v in asdict(config.model).items() if k not in _NOT_OPTIONS}
    options = {"model": config.model.arch, **encoder, **asdict(config.objective)}
    return options | config.loop_options()


def default_of(name: str, arch: str) -> Any:
    """What `train_config` uses for option `name` of `arch` when it is not given."""
    if name in TUNED_DEFAULTS[arch]:
        return TUNED_DEFAULTS[arch][name]
    for cls in (ENCODER_CONFIGS[arch], ObjectiveConfig, TrainConfig):
        for f in fields(cls):
            if f.name == name:
                return f.default if f.default_factory is MISSING else f.default_factory()
    raise ValueError(f"not an option of {arch} training: {name}")


def train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from flat options as `intentrec train`, `bench train --set` and the presets
    name them (`model="disen", intents=2, s2s_lambda=0.3, lr=5e-3`); an option the chosen
    architecture does not have is an error naming it. Options not given take the model's
    TUNED_DEFAULTS, then the config classes' defaults."""
    arch = options.pop("model", "sasrec")
    owners = option_names(arch)
    unknown = sorted(set(options) - known_options(arch))
    if unknown:
        raise ValueError(f"not an option of {arch} training: {', '.join(unknown)}")
    tuned = TUNED_DEFAULTS[arch]
    if options.get("loss", tuned.get("loss")) == "bce":
        # a tuned smoothing belongs to the softmax losses: a bce run gets it only when asked for
        tuned = {k: v for k, v in tuned.items() if k != "label_smoothing"}
    options = tuned | options
    picked = {
        group: {k: options[k] for k in names & set(options)} for group, names in owners.items()
    }
    return TrainConfig(
        model=ENCODER_CONFIGS[arch](**picked["model"]),
        objective=ObjectiveConfig(**picked["objective"]),
        **picked["loop"],
    )
