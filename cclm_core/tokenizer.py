"""The BPE word-piece vocabulary a ``Preprocessor`` may carry, built with Hugging Face ``tokenizers``.

The tokenizer is set up as the original cclm set it up (BPE with an ``[UNK]`` token, whitespace
pre-tokenisation, NFD + lowercase + accent stripping, special tokens ``[UNK]``, ``[MASK]``, ``[CLS]``).
It is kept in its JSON form, the form it is saved and fingerprinted in; ``tokenizers`` is imported only
when one is trained or read, never when this module is imported.
"""

from __future__ import annotations

import json
from typing import Any

from cclm_core.errors import DataError, FormatError

SPECIAL_TOKENS = ("[UNK]", "[MASK]", "[CLS]")


def train_tokenizer(texts: list[str], vocab_size: int) -> dict[str, Any]:
    """Train a BPE tokenizer of at most ``vocab_size`` tokens on ``texts``; returns its JSON form.

    Training is deterministic: the same texts and size give the same tokenizer, so refitting a
    preprocessor on the same data keeps its fingerprint.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from tokenizers.normalizers import NFD, Lowercase, Sequence, StripAccents
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.trainers import BpeTrainer

    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < len(SPECIAL_TOKENS):
        raise DataError(
            f"vocab_size must be an integer of at least {len(SPECIAL_TOKENS)}, got {vocab_size!r}",
            hint="the original default is 10000",
        )
    tokenizer = Tokenizer(BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.normalizer = Sequence([NFD(), Lowercase(), StripAccents()])
    trainer = BpeTrainer(special_tokens=list(SPECIAL_TOKENS), vocab_size=vocab_size, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return json.loads(tokenizer.to_str())


def tokenizer_from_config(config: Any, where: str) -> Any:
    """The ``tokenizers.Tokenizer`` of a saved JSON form; a malformed one is a ``FormatError``."""
    from tokenizers import Tokenizer

    if not isinstance(config, dict):
        raise FormatError(f"{where}: 'tokenizer' must be a JSON object or null")
    try:
        return Tokenizer.from_str(json.dumps(config))
    except Exception as e:  # tokenizers raises plain Exception subclasses for every parse failure
        raise FormatError(
            f"{where} holds a tokenizer that cannot be read: {str(e).splitlines()[0]}",
            hint="save the preprocessor again",
        ) from e
