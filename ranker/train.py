"""LoRA fine-tuning of a causal LM as the refine stage's ranker (score mode's verbalizer).

The loss is what score mode reads at serving time: the next-token logits after the prompt (chat
template, generation prompt added), restricted to the candidates' label tokens, cross-entropy
against the label of the true next item. AdamW on the LoRA weights, early stopping on a
held-out slice of training users, then the adapters are merged and the model saved with its
tokenizer and chat template, beside a card naming what it was trained from and against.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ranker.examples import RankerExample
from serving.refine.settings import RefineSettings

CARD_FILE = "ranker_card.json"


@dataclass(frozen=True)
class RankerOptions:
    epochs: int = 3
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    # attention projections of Llama-family models (SmolLM2 is one)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    patience: int = 2  # evaluations (one per epoch) without a lower validation loss
    max_steps: int | None = None  # a cap for smoke runs; None: the epochs decide
    seed: int = 0
    threads: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lora_rank < 1:
            raise ValueError("epochs, batch_size and lora_rank must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class RankerFit:
    train_loss: list[float] = field(default_factory=list)  # mean per epoch
    valid: list[dict[str, float]] = field(default_factory=list)  # per epoch
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0


def label_token_ids(tokenizer: Any, labels: list[str]) -> list[int]:
    """The token each label is answered with (score mode reads these); one token per label."""
    ids = []
    for label in labels:
        tokens = tokenizer.encode(label, add_special_tokens=False)
        if len(tokens) != 1:
            raise ValueError(f"label {label!r} is {len(tokens)} tokens for this tokenizer, not 1")
        ids.append(tokens[0])
    return ids


def encode_prompts(tokenizer: Any, examples: list[RankerExample], settings: RefineSettings):
    """Chat-templated prompts with the generation prompt, left-padded so that the last position
    of every row is where the answer's first token is predicted."""
    texts = [
        tokenizer.apply_chat_template(
            example.prompt(settings).messages, tokenize=False, add_generation_prompt=True
        )
        for example in examples
    ]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def verbalizer_loss(model: Any, tokenizer: Any, batch: list[RankerExample], settings, label_ids):
    """-> (mean cross-entropy over the batch, number of examples whose answer ranks first)."""
    import torch
    import torch.nn.functional as F

    encoded = encode_prompts(tokenizer, batch, settings).to(model.device)
    # only the answer position's logits: the vocabulary-wide head over every prompt position
    # would hold B x tokens x vocab floats for nothing
    logits = model(**encoded, logits_to_keep=1).logits[:, -1, :]  # (B, vocab)
    losses, correct = [], 0
    for row, example in enumerate(batch):
        scores = logits[row, label_ids[: len(example.tail)]].float()
        target = torch.tensor(example.answer, device=scores.device)
        losses.append(F.cross_entropy(scores[None, :], target[None]))
        correct += int(scores.argmax().item() == example.answer)
    return torch.stack(losses).mean(), correct


def _evaluate(model, tokenizer, examples, settings, label_ids, batch_size) -> dict[str, float]:
    import torch

    model.eval()
    total, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            loss, hits = verbalizer_loss(model, tokenizer, batch, settings, label_ids)
            total += float(loss) * len(batch)
            correct += hits
    return {"loss": total / max(len(examples), 1), "top1": correct / max(len(examples), 1)}


def train_ranker(
    base: Path,
    train: list[RankerExample],
    valid: list[RankerExample],
    settings: RefineSettings,
    options: RankerOptions,
    out: Path,
    card: dict[str, Any],
    *,
    progress: bool = True,
) -> tuple[RankerFit, Path]:
    """Fine-tune `base` (a Hugging Face causal LM folder) and write the merged model and its
    card into `out`; -> the fit's figures and the card's path."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not train or not valid:
        raise ValueError(
            f"need training and validation examples, got {len(train)} and {len(valid)}"
        )
    random.seed(options.seed)
    torch.manual_seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = (
        ("cuda" if torch.cuda.is_available() else "cpu")
        if options.device == "auto"
        else options.device
    )
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to(device)
    labels = sorted({key for e in train + valid for key in e.prompt(settings).keys})
    label_ids = label_token_ids(tokenizer, labels)
    lora = LoraConfig(
        r=options.lora_rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=list(options.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=options.lr,
        weight_decay=options.weight_decay,
    )
    fit = RankerFit()
    started = time.perf_counter()
    fit.valid.append(_evaluate(model, tokenizer, valid, settings, label_ids, options.batch_size))
    best_loss, best_state, stale = fit.valid[0]["loss"], None, 0
    steps_per_epoch = math.ceil(len(train) / options.batch_size)
    rng = random.Random(options.seed)
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        losses = []
        bar = tqdm(
            range(steps_per_epoch), desc=f"ranker epoch {epoch}", unit="step", disable=not progress
        )
        for step in bar:
            if options.max_steps is not None and fit.steps >= options.max_steps:
                break
            batch = [
                train[i] for i in order[step * options.batch_size : (step + 1) * options.batch_size]
            ]
            loss, _ = verbalizer_loss(model, tokenizer, batch, settings, label_ids)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            fit.steps += 1
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        fit.train_loss.append(sum(losses) / max(len(losses), 1))
        fit.valid.append(
            _evaluate(model, tokenizer, valid, settings, label_ids, options.batch_size)
        )
        if fit.valid[-1]["loss"] < best_loss:
            best_loss, fit.best_epoch, stale = fit.valid[-1]["loss"], epoch, 0
            best_state = {
                k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k
            }
        else:
            stale += 1
        if stale >= options.patience or (
            options.max_steps is not None and fit.steps >= options.max_steps
        ):
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    fit.seconds = time.perf_counter() - started
    merged = model.merge_and_unload()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(out)
    card_path = out / CARD_FILE
    card = card | {
        "base_model": str(base),
        "options": asdict(options),
        "examples": {"train": len(train), "valid": len(valid)},
        "fit": asdict(fit),
        "valid_before": fit.valid[0],
        "valid_best": fit.valid[fit.best_epoch],
    }
    card_path.write_text(json.dumps(card, indent=2, default=str) + "\n")
    return fit, card_path
