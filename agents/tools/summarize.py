"""`text.summarize:v1`: an extractive summary (the most representative sentences) for Korean and English."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from agents.tools import Tool, ToolContext

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+|[0-9]+(?:\.[0-9]+)?|[\uac00-\ud7a3]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "as",
        "at",
        "by",
        "from",
        "has",
        "have",
        "had",
        "not",
        "no",
        "so",
        "we",
        "you",
        "they",
        "he",
        "she",
        "i",
        "our",
        "your",
        "their",
        "its",
        "which",
        "who",
        "what",
    ]
)


def is_korean(text: str) -> bool:
    """True when Hangul makes up a noticeable share of the letters."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(1 for c in letters if _HANGUL.match(c)) / len(letters) > 0.3


def split_sentences(text: str) -> list[str]:
    """The sentences of the text, stripped, in order."""
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part and part.strip()]


def _terms(sentence: str) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(sentence.lower()):
        if _HANGUL.match(word):
            # Korean words carry particles (은/는/이/가...): character bigrams match stems across them.
            terms.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
        elif word not in _STOPWORDS:
            terms.append(word)
    return terms


def summarize(text: str, max_sentences: int = 2) -> str:
    """The `max_sentences` highest-scoring sentences, in their original order."""
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return " ".join(sentences)
    frequency = Counter(term for sentence in sentences for term in _terms(sentence))
    scores = []
    for index, sentence in enumerate(sentences):
        terms = _terms(sentence)
        score = sum(frequency[t] for t in terms) / (len(terms) or 1)
        scores.append((score + (0.5 if index == 0 else 0.0), index))
    chosen = sorted(index for _score, index in sorted(scores, key=lambda s: (-s[0], s[1]))[:max_sentences])
    return " ".join(sentences[i] for i in chosen)


def _run(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    text = args["text"]
    summary = summarize(text, args.get("max_sentences", 2))
    return {"summary": summary, "language": "ko" if is_korean(text) else "en", "source_chars": len(text)}


TOOL = Tool(
    name="text.summarize",
    version="v1",
    description="Extractive summary: the most representative sentences, Korean or English.",
    schema={
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 50_000},
            "max_sentences": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    run=_run,
    input_arg="text",
)
