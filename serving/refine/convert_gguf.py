"""GGUF -> Hugging Face folder, for vLLM builds without a GGUF loader.

Run as a script by the python of the LLM environment (`scripts/install-llm.sh`), never imported by
the API process: it needs transformers, gguf and torch, which the serving environment lacks.

    python convert_gguf.py GGUF_FILE OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def convert(gguf_file: Path, out_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf_file.parent), gguf_file.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    # bfloat16 halves the folder (260 MB) and is what the server runs with (--dtype bfloat16).
    model = AutoModelForCausalLM.from_config(config, dtype="bfloat16")
    tensors = load_gguf_checkpoint(str(gguf_file), return_tensors=True, model_to_load=model)[
        "tensors"
    ]
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    # The embeddings are tied to the output layer, so only lm_head may be missing.
    untied = [k for k in missing if k != "lm_head.weight"]
    if untied or unexpected:
        raise SystemExit(f"{gguf_file}: weights missing {untied}, unexpected {list(unexpected)}")
    model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    tmp.chmod(0o755)  # mkdtemp makes it owner-only; the folder is shared by whoever serves it
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"converted {sys.argv[1]} -> {sys.argv[2]}")
