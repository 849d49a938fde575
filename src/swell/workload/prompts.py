"""Prompts of a known approximate length, built offline (no tokenizer download).

The text is made of short, common English words; each is a single token (with its leading space)
in the BPE vocabularies of GPT, Llama, Mistral and Qwen models, so a prompt of n words is about n
tokens (chat templates add a few). Prompts are slices of one seeded text at random offsets, so
they differ from one another (no accidental prefix caching) and cost almost nothing to build.
"""

from __future__ import annotations

import functools

import numpy as np

_VOCABULARY = (
    "the of and to in is was for on that with as by at from his her it an are were be this which or had "
    "not but one all their they have has new more time who can two first after other some into out "
    "year would up about also its most over many only people state used such may when then world "
    "city part these great under high during school where while being day both made three well "
    "water after found long game film work life back each there him what since right between show "
    "name war early down end place way house law man same group near team old small line land large "
    "side home main power music book open make know take like good just because number family field "
    "road play book river light story word point house model north south east west order since will "
    "form set red blue green black white river stone tree sea sky fire wind rain snow car bus train"
)
WORDS = tuple(sorted(set(_VOCABULARY.split())))
TEXT_WORDS = 65536


@functools.lru_cache(maxsize=1)
def _text() -> tuple[str, tuple[int, ...]]:
    """One long seeded text and the character offset where each word starts."""
    rng = np.random.default_rng(20231116)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), TEXT_WORDS).tolist()]
    offsets = [0]
    for word in words:
        offsets.append(offsets[-1] + len(word) + 1)
    return " ".join(words) + " ", tuple(offsets)


def prompt(n_tokens: int, rng: np.random.Generator | None = None, *, offset: int | None = None) -> str:
    """A prompt of about `n_tokens` tokens, starting at a random (or given) word of the text."""
    text, offsets = _text()
    n = max(1, int(n_tokens))
    if n >= TEXT_WORDS:
        repeats = n // TEXT_WORDS
        return (text * repeats + prompt(n - repeats * TEXT_WORDS, rng, offset=offset)).strip()
    if offset is None:
        offset = int(rng.integers(0, TEXT_WORDS - n + 1)) if rng is not None else 0
    start = offset % (TEXT_WORDS - n + 1)
    return text[offsets[start] : offsets[start + n] - 1]


def approx_tokens(text: str) -> int:
    """About how many tokens `text` is: one per short word, one more per 8 characters of a long one."""
    return sum(1 + (len(word) - 1) // 8 for word in text.split())
