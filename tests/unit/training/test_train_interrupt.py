"""Ctrl-C during `intentrec train` ends the run like an early stop: the best epoch so far is
kept, tested and written, so hours of training are not lost to a stop by hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from training.config import TrainConfig, train_config
from training.data import load_run_data
from training.train import EvalHook, fit

pytestmark = pytest.mark.slow


def _config(data: Path) -> TrainConfig:
    return train_config(
        data=str(data), model="sasrec", dim=16, layers=1, max_len=20, epochs=50, patience=50,
        seed=1, threads=1,
    )  # fmt: skip


def _interrupt_at(epoch_to_stop: int) -> EvalHook:
    def hook(epoch: int, _valid: dict[str, float]) -> None:
        if epoch == epoch_to_stop:
            raise KeyboardInterrupt

    return hook


def test_an_interrupted_fit_keeps_its_best_epoch(tiny_data: Path) -> None:
    config = _config(tiny_data)
    result = fit(
        config, load_run_data(config.loop_options()), progress=False,
        on_eval=_interrupt_at(3), keep_on_interrupt=True,
    )  # fmt: skip
    assert len(result.epoch_seconds) == 3
    assert result.stopped == f"interrupted after 3 epochs, best epoch {result.best_epoch}"
    assert 1 <= result.best_epoch <= 3
    weights = result.model.state_dict()
    assert all(torch.equal(weights[name], tensor) for name, tensor in result.best_state.items())


def test_without_keep_on_interrupt_the_interrupt_propagates(tiny_data: Path) -> None:
    config = _config(tiny_data)
    with pytest.raises(KeyboardInterrupt):
        fit(config, load_run_data(config.loop_options()), progress=False, on_eval=_interrupt_at(2))


def test_an_interrupt_before_any_validation_aborts(
    tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C inside the first epoch cannot be timed with a real signal; the stand-in raises
    # where the first epoch would run.
    def interrupted_epoch(*_args: object, **_kwargs: object) -> float:
        raise KeyboardInterrupt

    monkeypatch.setattr("training.train.train_epoch", interrupted_epoch)
    config = _config(tiny_data)
    with pytest.raises(KeyboardInterrupt):
        fit(config, load_run_data(config.loop_options()), progress=False, keep_on_interrupt=True)


def test_ctrl_c_on_the_train_command_writes_the_best_epoch(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-c", "from intentrec.cli import app; app()", "train",
        "--data", str(tiny_data), "--model", "sasrec", "--dim", "16", "--layers", "1",
        "--epochs", "100000", "--patience", "100000", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ | {"COLUMNS": "200"}
    )
    assert process.stderr is not None
    validated = threading.Event()
    stderr: list[bytes] = []

    def read_progress() -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):
            stderr.append(chunk)
            if b"val_ndcg@10" in b"".join(stderr):
                validated.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    try:
        assert validated.wait(timeout=180), b"".join(stderr).decode(errors="replace")[-2000:]
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=180)
    finally:
        process.kill()
    reader.join(timeout=10)
    assert process.returncode == 0, b"".join(stderr).decode(errors="replace")[-2000:]
    assert process.stdout is not None
    stdout = process.stdout.read()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"].startswith("interrupted after ")
    assert metrics["epochs_run"] < 100000
    assert 0.0 <= metrics["test"]["full"]["ndcg@10"] <= 1.0
    assert (out / "checkpoint.pt").exists()
    assert "interrupted after" in stdout.decode()
