"""Yes/no answers: "yes I did", "sí claro", "non pas encore", "没有", "👍"."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from ..languages import primary
from .normalize import Tokens, as_written, tokenize
from .phrases import PhraseTable, sub
from .words import load_words

Answer = Literal["yes", "no", "unsure"]

# Language-neutral emoji answers; skin-tone modifiers follow the base character.
_EMOJI: dict[str, bool] = {
    "\U0001f44d": True,  # thumbs up
    "\U0001f44c": True,  # OK hand
    "\u2705": True,  # check mark button
    "\u2714": True,  # heavy check mark
    "\u2611": True,  # ballot box with check
    "\U0001f44e": False,  # thumbs down
    "\u274c": False,  # cross mark
    "\u274e": False,  # cross mark button
    "\U0001f6ab": False,  # no entry sign
}


@lru_cache(maxsize=32)
def _tables(lang: str) -> tuple[PhraseTable[Answer], PhraseTable[Answer]]:
    """(anywhere, whole-reply-only) tables for one language."""
    words = load_words(lang)
    anywhere: PhraseTable[Answer] = PhraseTable()
    # "no sé" must stay unsure even though it starts with "no": unsure goes in first and
    # the longest phrase wins anyway.
    anywhere.add_all(words.unsure, "unsure", words)
    anywhere.add_all(words.yes_words, "yes", words)
    anywhere.add_all(words.no_words, "no", words)
    alone: PhraseTable[Answer] = PhraseTable()
    alone.add_all(words.yes_alone, "yes", words)
    alone.add_all(words.no_alone, "no", words)
    return anywhere, alone


def _emoji_votes(text: str) -> set[bool]:
    return {vote for char, vote in _EMOJI.items() if char in text}


def _clauses(tokens: Tokens) -> list[Tokens]:
    cuts = [0, *sorted(tokens.breaks), len(tokens.folded)]
    return [sub(tokens, lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False) if hi > lo]


def _first_clause(tokens: Tokens, lang: str) -> Answer | None:
    """The answer of a reply that opens with a yes or no of its own: "没有，都挺好" (no, all
    fine), "有，头疼" (yes, a headache). Later clauses may hold yes/no words in other senses
    ("好", good); they overrule the opening only when one is itself a whole answer
    ("ok, I forgot") or unsure."""
    anywhere, alone = _tables(lang)
    first, *rest = _clauses(tokens)
    opening = alone.whole(first) or anywhere.whole(first)
    if opening not in ("yes", "no"):
        return None
    for clause in rest:
        whole = alone.whole(clause) or anywhere.whole(clause)
        if (whole is not None and whole != opening) or any(
            m.value == "unsure" for m in anywhere.scan(clause)
        ):
            return None
    return opening


def _vote(tokens: Tokens, lang: str, *, fallback: bool = False) -> set[Answer]:
    anywhere, alone = _tables(lang)
    whole = alone.whole(tokens)
    if whole is not None:
        return {whole}
    if tokens.breaks:
        opening = _first_clause(tokens, lang)
        if opening is not None:
            return {opening}
    matches = list(anywhere.scan(tokens))
    # An English answer leads with it ("yes I did", "no, forgot"). Deeper in a reply in
    # another language, "ya" or "no" are ordinary words (Swahili "ya", Portuguese "no").
    if fallback and (not matches or matches[0].start > 0):
        return set()
    return {match.value for match in matches}


def parse_yes_no(text: str, lang: str) -> bool | None:
    """True for yes, False for no, None when unclear (nothing found, both, or "not sure").

    The participant's language is tried first; English only when it finds nothing, since
    many participants answer in English whatever their language.
    """
    tokens = tokenize(text)
    emoji = _emoji_votes(text)
    code = primary(lang)
    for candidate in dict.fromkeys((code, "en")):
        fallback = candidate != code
        found = _vote(as_written(tokens) if fallback else tokens, candidate, fallback=fallback)
        if not found:
            continue
        if "unsure" in found:
            return None
        votes = {answer == "yes" for answer in found} | emoji
        return votes.pop() if len(votes) == 1 else None
    return emoji.pop() if len(emoji) == 1 else None
