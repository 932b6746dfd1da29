"""The training loop: AdamW, early stopping on validation NDCG@10, a self-describing checkpoint."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from training.checkpoint import CHECKPOINT_FILE, METRICS_FILE, Checkpoint, save_checkpoint
from training.config import EncoderConfig, TrainConfig, lr_decay_patience_for, patience_for
from training.data import SequenceDataset, load_run_data
from training.evaluate import (
    EvalOptions,
    beyond_accuracy_report,
    evaluate_scorer,
    evaluate_test,
    item_vectors,
    model_scorer,
    popularity_scorer,
)
from training.models import SequenceEncoder, build_model
from training.objectives import Objective, build_objective
from training.sequences import history_windows, random_windows, shuffled_batches

EARLY_STOP_METRIC = "ndcg@10"
PARITY_SAMPLE_SIZE = 1000


@dataclass
class RunResult:
    run_dir: Path
    checkpoint_path: Path
    metrics: dict[str, Any]


def resolve_device(name: str) -> torch.device:
    """`auto` | `cpu` | `cuda[:N]` -> a device torch can use; anything else fails by name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return device


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights: checkpoints load anywhere, export runs on the CPU."""
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _sample_sequences(dataset: SequenceDataset, max_len: int, seed: int) -> list[list[int]]:
    """Real sequences of varying length (1..max_len + 10) for export parity checks."""
    rng = np.random.default_rng(seed)
    sequences = dataset.sequences
    samples = []
    for i in range(PARITY_SAMPLE_SIZE):
        seq = sequences[i % len(sequences)]
        length = int(rng.integers(1, min(len(seq), max_len + 10) + 1))
        end = int(rng.integers(length, len(seq) + 1))
        samples.append(seq[end - length : end].tolist())
    return samples


@dataclass
class Fit:
    """What the training loop found on validation; test is not touched here."""

    model: torch.nn.Module
    model_config: EncoderConfig  # n_items set from the data set
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_valid: dict[str, float]
    epoch_seconds: list[float]
    stopped: str
    final_lr: float


# Called after each validation with (epoch, full-ranking validation metrics): the search reports
# them to its scheduler, which may end the trial there.
EvalHook = Callable[[int, dict[str, float]], None]


def plateau_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, patience: int
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """Decays the learning rate when validation NDCG@10 stalls; None at `lr_decay` 1."""
    if config.lr_decay >= 1.0:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max",
        factor=config.lr_decay,
        patience=lr_decay_patience_for(config.lr_decay_patience, patience),
    )


def train_epoch(
    model: SequenceEncoder,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    sequences: list[np.ndarray],
    config: TrainConfig,
    rng: np.random.Generator,
    before_step: Callable[[], None] | None = None,
) -> float:
    """One pass over a window per user (or, with `whole_history`, over every action) in random
    order; -> the mean loss. `before_step` runs before each batch (the supernet samples its path
    there)."""
    model.train()
    device = next(model.parameters()).device
    if config.whole_history:
        windows = history_windows(sequences, objective.window)
    else:
        windows = random_windows(sequences, objective.window, rng, config.recent_window_share)
    batches = shuffled_batches(windows, config.batch_size, rng, by_length=config.length_batches)
    losses = []
    for rows in batches:
        if before_step is not None:
            before_step()
        batch = torch.from_numpy(windows[rows]).to(device)
        loss, _parts = objective(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def fit(
    config: TrainConfig,
    dataset: SequenceDataset,
    *,
    progress: bool = True,
    on_eval: EvalHook | None = None,
    keep_on_interrupt: bool = False,
) -> Fit:
    """Train with early stopping on validation NDCG@10; keep the best epoch's weights.

    With `keep_on_interrupt`, Ctrl-C ends training like an early stop (the best epoch so far is
    kept) once an epoch has been validated; before that there is nothing to keep and it aborts.
    """
    seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    split = dataset.split()
    model_config = replace(config.model, n_items=dataset.n_items)
    model = build_model(asdict(model_config)).to(device)
    objective = build_objective(model_config, config.objective)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    eval_options = EvalOptions(max_len=model_config.max_len, history=config.history)
    rng = np.random.default_rng(config.seed)
    trainable = [seq for seq in split.train if len(seq) >= 1]

    patience = patience_for(config.patience, len(split.valid_targets))
    scheduler = plateau_scheduler(optimizer, config, patience)
    best_score, best_epoch, best_state, best_valid = -1.0, 0, None, {}
    evals_without_gain = 0
    epoch_seconds: list[float] = []
    bar = tqdm(
        range(1, config.epochs + 1),
        desc=f"train {model_config.arch}",
        disable=not progress,
        unit="epoch",
    )
    interrupted = False
    try:
        for epoch in bar:
            epoch_start = time.perf_counter()
            loss = train_epoch(model, objective, optimizer, trainable, config, rng)
            epoch_seconds.append(time.perf_counter() - epoch_start)
            postfix = {"loss": f"{loss:.4f}"}
            if epoch % config.eval_every == 0 or epoch == config.epochs:
                model.eval()
                valid = evaluate_scorer(
                    model_scorer(model), split.valid_inputs, split.valid_targets, eval_options
                )["full"]
                score = valid[EARLY_STOP_METRIC]
                postfix |= {"val_ndcg@10": f"{score:.4f}", "best": f"{max(score, best_score):.4f}"}
                if score > best_score:
                    best_score, best_epoch, best_valid = score, epoch, valid
                    best_state = cpu_state(model)
                    evals_without_gain = 0
                else:
                    evals_without_gain += 1
                if scheduler is not None:
                    scheduler.step(score)
                    postfix["lr"] = f"{optimizer.param_groups[0]['lr']:.2g}"
                if on_eval is not None:
                    on_eval(epoch, valid)
            bar.set_postfix(postfix)
            if evals_without_gain >= patience:
                break
    except KeyboardInterrupt:
        if not keep_on_interrupt or best_state is None:
            raise
        interrupted = True
        bar.close()
    epochs_run = len(epoch_seconds)
    if interrupted:
        stopped = f"interrupted after {epochs_run} epochs, best epoch {best_epoch}"
    elif epochs_run < config.epochs:
        stopped = (
            f"early stop at epoch {epochs_run}: no gain in validation {EARLY_STOP_METRIC} for "
            f"{patience * config.eval_every} epochs, best epoch {best_epoch}"
        )
    else:
        stopped = f"ran all {epochs_run} epochs, best epoch {best_epoch}"
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    final_lr = float(optimizer.param_groups[0]["lr"])
    return Fit(
        model, model_config, best_state, best_epoch, best_valid, epoch_seconds, stopped, final_lr
    )


def run_training(
    config: TrainConfig, out_dir: Path, *, progress: bool = True, keep_on_interrupt: bool = False
) -> RunResult:
    """Fit, then evaluate the best epoch on test; write checkpoint.pt and metrics.json.
    `keep_on_interrupt`: as for `fit` (an interrupted run is still tested and written)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_run_data(config.loop_options())
    started = time.perf_counter()
    result = fit(config, dataset, progress=progress, keep_on_interrupt=keep_on_interrupt)
    train_seconds = time.perf_counter() - started
    split = dataset.split()
    popularity = dataset.popularity()
    eval_options = EvalOptions(max_len=result.model_config.max_len, history=config.history)
    scorer = model_scorer(result.model)
    test = evaluate_test(scorer, split.test_inputs, split.test_targets, popularity, eval_options)
    beyond = beyond_accuracy_report(
        scorer, split.test_inputs, popularity, item_vectors(result.model), eval_options
    )
    pop = popularity_scorer(popularity)
    baselines = {
        "popularity": {
            "valid": evaluate_scorer(pop, split.valid_inputs, split.valid_targets, eval_options)[
                "full"
            ],
            "test": evaluate_scorer(pop, split.test_inputs, split.test_targets, eval_options)[
                "full"
            ],
        }
    }
    data_info = {
        "name": dataset.name,
        "source_hash": dataset.source_hash,
        "users": len(dataset.user_ids),
        "items": dataset.n_items,
        "actions": int(sum(len(seq) for seq in dataset.sequences)),
        "split": "leave-one-out",
    }
    metrics = {
        "model": result.model_config.arch,
        "history": config.history,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.epoch_seconds),
        "stopped": result.stopped,
        "valid": result.best_valid,
        "test": test,
        "baselines": baselines,
        "beyond_accuracy": beyond,
        "data": data_info,
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(float(np.mean(result.epoch_seconds)), 3),
        "final_lr": result.final_lr,
        "device": str(next(result.model.parameters()).device),
    }
    checkpoint = Checkpoint(
        model_config=asdict(result.model_config),
        objective_config=asdict(config.objective),
        train_config=config.loop_options(),
        state_dict=result.best_state,
        item_ids=list(dataset.item_ids),
        item_titles=list(dataset.item_titles),
        item_texts=list(dataset.item_texts),
        item_popularity=[int(x) for x in popularity],
        data_info=data_info,
        sample_sequences=_sample_sequences(dataset, result.model_config.max_len, config.seed),
        metrics={"valid": result.best_valid, "test": test},
    )
    checkpoint_path = save_checkpoint(checkpoint, out_dir / CHECKPOINT_FILE)
    write_metrics(out_dir, metrics)
    return RunResult(run_dir=out_dir, checkpoint_path=checkpoint_path, metrics=metrics)


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> Path:
    path = Path(run_dir) / METRICS_FILE
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path
