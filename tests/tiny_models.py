"""Tiny causal LMs built offline inside the tests: a byte-level BPE tokenizer trained on the
test's own text and a GPT-2 with random weights, saved with a plain and a chat tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_bpe(corpus: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer like GPT-2's trained on ``corpus``: any text encodes."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )


def tiny_gpt2(tok: Any, **config: Any) -> Any:
    """A GPT-2 (2 layers, hidden 32 unless ``config`` says otherwise) for ``tok``, seeded."""
    import torch
    import transformers

    cfg = transformers.GPT2Config(
        **{"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 512, **config},
        vocab_size=len(tok),
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg)


def save_plain_and_chat(root: Path, tok: Any, model: Any) -> dict[str, Path]:
    """``model`` saved twice under ``root``: with ``tok`` as it is and with a chat template."""
    paths = {"plain": root / "plain", "chat": root / "chat"}
    for name, path in paths.items():
        model.save_pretrained(path)
        tok.chat_template = CHAT_TEMPLATE if name == "chat" else None
        tok.save_pretrained(path)
    return paths
