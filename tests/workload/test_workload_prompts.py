"""Prompts of a known approximate size, built offline."""

from __future__ import annotations

import numpy as np
import pytest

from swell.workload import prompts


@pytest.mark.parametrize("n", [1, 7, 550, 4000, 70_000])
def test_a_prompt_has_about_the_asked_number_of_tokens(n: int) -> None:
    text = prompts.prompt(n, np.random.default_rng(0))
    assert len(text.split()) == n
    assert prompts.approx_tokens(text) == pytest.approx(n, rel=0.05)
    assert text == text.strip()


def test_prompts_differ_and_are_seeded() -> None:
    a = [prompts.prompt(50, np.random.default_rng(1)) for _ in range(2)]
    b = prompts.prompt(50, np.random.default_rng(2))
    assert a[0] == a[1] != b
    assert prompts.prompt(5, offset=3) == prompts.prompt(5, offset=3)


def test_approx_tokens_counts_long_words_as_more_than_one() -> None:
    assert prompts.approx_tokens("") == 0
    assert prompts.approx_tokens("the cat") == 2
    assert prompts.approx_tokens("autoscaling") == 2
