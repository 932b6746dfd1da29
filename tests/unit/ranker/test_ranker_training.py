"""LoRA training of the ranker on a tiny Llama-family model (random weights, the real SmolLM2
tokenizer and chat template): the verbalizer loss goes down, and the merged model loads in
transformers and answers with the label it learned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ranker.examples import RankerExample
from ranker.train import CARD_FILE, RankerOptions, label_token_ids, train_ranker, verbalizer_loss
from serving.refine.contract import Candidate
from serving.refine.prompt import LABELS
from serving.refine.server import LLMServerError, ensure_model, llm_python
from serving.refine.settings import LLMServerSettings, RefineSettings
from tests.e2e.refine.conftest import MODEL_CACHE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with the embedded model's tokenizer: real code, seconds to train."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    settings = LLMServerSettings(data_dir=MODEL_CACHE)
    try:
        folder = ensure_model(settings, llm_python(settings))
    except LLMServerError as exc:
        pytest.skip(f"the `llm` group is not installed (the tokenizer comes from it): {exc}")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        # head_dim 64, as SmolLM2's: vLLM's CPU attention kernels support no smaller one
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _examples(count: int) -> list[RankerExample]:
    def item(i: int) -> Candidate:
        return Candidate(i, str(i), f"Film {i}", "genres: Drama", 0.0)

    return [
        RankerExample(
            user=str(n),
            history=[item(100 + n + j) for j in range(3)],
            tail=[item(10 * n + j) for j in range(10)],
            answer=n % 3,  # the answer is always among the first three labels
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def trained(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory):
    examples = _examples(12)
    options = RankerOptions(epochs=8, batch_size=4, lr=5e-3, patience=8, threads=1, device="cpu")
    out = tmp_path_factory.mktemp("ranker") / "tiny-ranker"
    fit, card_path = train_ranker(
        tiny_base, examples, examples, RefineSettings(), options, out, {"bundle": "v-test"},
        progress=False,
    )  # fmt: skip
    return examples, out, fit, card_path


def test_training_lowers_the_loss_and_the_merged_model_answers(tiny_base: Path, trained) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples, out, fit, card_path = trained
    settings = RefineSettings()
    assert fit.valid[fit.best_epoch]["loss"] < fit.valid[0]["loss"]
    assert fit.train_loss[-1] < fit.train_loss[0]
    card = json.loads(card_path.read_text())
    assert card_path == out / CARD_FILE
    assert card["bundle"] == "v-test" and card["base_model"] == str(tiny_base)
    assert card["examples"] == {"train": 12, "valid": 12}

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template  # served with the same template
    label_ids = label_token_ids(tokenizer, list(LABELS[:10]))
    with torch.inference_mode():
        merged_loss, _ = verbalizer_loss(model, tokenizer, examples, settings, label_ids)
    # the saved model is the trained one (bfloat16 on disk: equal up to rounding)
    assert float(merged_loss) == pytest.approx(fit.valid[fit.best_epoch]["loss"], abs=0.05)
    prompt = tokenizer.apply_chat_template(
        examples[0].prompt(settings).messages, add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )  # fmt: skip
    with torch.inference_mode():
        answer = model.generate(**prompt, max_new_tokens=1, do_sample=False)
    assert answer.shape[1] == prompt["input_ids"].shape[1] + 1


def test_every_label_is_one_token(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    assert len(set(label_token_ids(tokenizer, list(LABELS)))) == len(LABELS)
    with pytest.raises(ValueError, match="not 1"):
        label_token_ids(tokenizer, ["Candidate A"])


async def test_vllm_serves_the_fine_tuned_model_under_its_name(trained) -> None:
    from serving.refine.client import LLMClient
    from serving.refine.server import EmbeddedLLMServer
    from tests.e2e.refine.conftest import _free_port

    examples, out, _, _ = trained
    settings = LLMServerSettings(data_dir=MODEL_CACHE, llm_model_dir=out, llm_port=_free_port())
    assert settings.served_name == "tiny-ranker"
    server = EmbeddedLLMServer(settings)
    server.start()
    try:
        server.wait_ready()
        client = LLMClient(server.base_url, settings.served_name, timeout_s=60.0)
        try:
            prompt = examples[0].prompt(RefineSettings())
            logprobs = await client.score(prompt.messages, prompt.keys, 20)
        finally:
            await client.aclose()
    finally:
        server.stop()
    # trained to answer among the first three labels: the served model does
    assert max(logprobs, key=logprobs.get) in {"A", "B", "C"}
