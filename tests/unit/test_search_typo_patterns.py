"""The self-hosted provider finds typo candidates through LIKE patterns on the trigram index; a word the pattern
misses could never be found, whatever the check after it. Every word one edit away from a query word (or starting
with it) must satisfy one of its patterns."""

from __future__ import annotations

import re

import pytest

from services.search.postgres_sql import TYPO_MAX_LETTERS, typo_patterns, words, words_column


def like(pattern: str, text: str) -> bool:
    """PostgreSQL's LIKE (escape character backslash)."""
    regex = ""
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            regex += re.escape(next(chars))
        else:
            regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def one_edit(word: str) -> set[str]:
    letters = set(word) | {"x", "ñ"}
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    missing = {word[:i] + word[i + 1 :] for i in range(len(word))}
    extra = {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in letters}
    wrong = {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in letters}
    return (swaps | missing | extra | wrong) - {word}


@pytest.mark.parametrize("term", ["tacos", "taco", "tcaos", "lupita", "burritos", "quesadillas", "doña", "abcdefghi"])
def test_every_word_one_edit_away_satisfies_a_pattern(term: str) -> None:
    patterns = typo_patterns(term)
    for candidate in one_edit(term) | {term, term + "s", term + "ería"}:
        text = f" pan {candidate} dulce "
        assert any(like(p, text) for p in patterns), (term, candidate, patterns)
    assert not any(like(p, " pan dulce ") for p in patterns)


def test_words_shorter_than_four_letters_or_too_long_match_as_prefixes_only() -> None:
    assert typo_patterns("rey") == ["% rey%"]
    long = "a" * (TYPO_MAX_LETTERS + 1)
    assert typo_patterns(long) == [f"% {long}%"]


def test_words_are_lowercased_normalised_and_never_like_wildcards() -> None:
    assert words("Tacos EL rey, tacos_al-pastor!") == ["tacos", "el", "rey", "al", "pastor"]
    assert words("Doña \uff32\uff2f\uff33\uff21") == ["doña", "rosa"]  # NFKC: full-width letters are letters
    assert words("n\u0303") == ["ñ"]  # a combining tilde composes
    assert words("%_\\ 🌮") == []
    assert words_column({"name": "Tacos El Rey", "description": "al pastor"}) == " tacos el rey al pastor "
    assert words_column({"name": None}) == " "
