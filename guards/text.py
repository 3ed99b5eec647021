"""Sentences and clauses of a reply, and masking: the text vocabulary of the guards, also used by
the crews to trim model-written prose (`split_sentences`).

Pure Python (no Guardrails import), so the validators' logic can be unit-tested and benchmarked on
its own. Offsets are character offsets into the original text; masking keeps lengths unchanged so
offsets stay valid after a span is blanked out.

A reply that streams is cut into the same sentences as it arrives (:class:`SentenceSplitter`): the
streaming guards check, and the client receives, one complete sentence at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

#: The gap between two sentences of a paragraph: whitespace after . ! or ?
SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+")
#: A sentence of a reply ends at a `SENTENCE_GAP`, at a line break, or at the end of the text.
_SENTENCE_END = re.compile(SENTENCE_GAP.pattern + r"|\n+")
#: Where a sentence starts (a name there may be an ordinary capitalised word): the text's start,
#: after . ! ? : and whitespace, or a line break; then any quote, bullet, heading mark or list number.
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)[\s>*#\-\u2022\"'(\[]*(?:\d{1,2}[.)]\s+)?", re.MULTILINE)
#: Clause boundaries inside a sentence: punctuation and contrastive conjunctions.
_CLAUSE_END = re.compile(
    r"[,;:()\u2014\u2013]|\s-\s|\b(?:but|however|although|though|while|whereas|instead|yet)\b",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of `text`, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


class SentenceSplitter:
    """Cuts streamed text into the sentences of :func:`sentence_spans` as it arrives.

    :meth:`feed` takes the next piece of text and returns the units completed so far; a unit is
    a sentence with the gap that follows it (the whitespace up to the next sentence), so joining
    every unit returned by `feed` and :meth:`flush` gives back the text exactly. A sentence is
    complete once the first character after its gap has arrived: only then is the gap known to be
    whole (".\n" may still become ".\n\n"), which holds a sentence back by one model token.
    Whitespace before the first sentence belongs to the first unit.

        splitter = SentenceSplitter()
        splitter.feed("Hello there. How ")   # ["Hello there. "]
        splitter.feed("are you?")            # []
        splitter.flush()                     # ["How are you?"]
    """

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def pending(self) -> str:
        """Text received but not yet returned (the sentence being written)."""
        return self._buffer

    def feed(self, text: str) -> list[str]:
        """Add `text`; return the units it completed (possibly none)."""
        self._buffer += text
        units: list[str] = []
        start = 0
        for m in _SENTENCE_END.finditer(self._buffer):
            if m.end() >= len(self._buffer):
                break  # the gap may go on in the next piece
            if not self._buffer[start : m.start()].strip():
                continue  # a gap before any text: it belongs to the next unit
            units.append(self._buffer[start : m.end()])
            start = m.end()
        self._buffer = self._buffer[start:]
        return units

    def flush(self) -> list[str]:
        """The rest of the text as a last unit ([] when nothing is left); the splitter is then
        empty and can be fed again."""
        rest, self._buffer = self._buffer, ""
        return [rest] if rest else []


def split_sentences(text: str) -> list[str]:
    """The sentences of a paragraph, split at each `SENTENCE_GAP` (line breaks stay inside a
    sentence), outer whitespace removed. An empty text gives [""]."""
    return SENTENCE_GAP.split(text.strip())


def sentence_starts(text: str) -> set[int]:
    """Offsets where a sentence's first word starts (see `_SENTENCE_START`)."""
    return {m.end() for m in _SENTENCE_START.finditer(text)}


def clause_bounds(text: str, start: int, end: int, pos: int) -> tuple[int, int]:
    """The clause of the sentence `text[start:end]` that contains offset `pos`."""
    lo, hi = start, end
    for m in _CLAUSE_END.finditer(text, start, end):
        if m.end() <= pos:
            lo = m.end()
        elif m.start() >= pos:
            hi = m.start()
            break
    return lo, hi


def enclosing(spans: list[tuple[int, int]], pos: int) -> tuple[int, int]:
    """The span of `spans` containing `pos` (or the whole range if none does)."""
    for s, e in spans:
        if s <= pos < e:
            return s, e
    return (0, 0) if not spans else (spans[0][0], spans[-1][1])


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each span replaced by spaces (same length, so offsets are preserved)."""
    chars = list(text)
    for s, e in spans:
        chars[s:e] = " " * (e - s)
    return "".join(chars)


def finditer_all(patterns: Iterable[re.Pattern[str]], text: str) -> Iterator[tuple[int, int]]:
    """Spans of every match of every pattern."""
    for pat in patterns:
        for m in pat.finditer(text):
            yield m.span()


def words_before(text: str, pos: int, lo: int, n: int = 8) -> list[str]:
    """Up to `n` lower-cased words of `text[lo:pos]`, nearest last."""
    return re.findall(r"[a-z']+", text[lo:pos].lower().replace("\u2019", "'"))[-n:]


def normalise_space(text: str) -> str:
    """Lower-case with runs of whitespace collapsed (for phrase containment checks)."""
    return re.sub(r"\s+", " ", text).strip().lower()
