"""A reply made plain before any reader looks for its answer (choices, numbers, short answers).

Typography and markup must not hide an answer: curly quotes, a Python repr's escaped quotes,
LaTeX's ``\\boxed{B}`` and ``\\[ \\]``; and an answer given in a structure rather than a sentence
(``<answer>B</answer>``, ``{"answer": "B"}``) is written as the line every reader looks for.
"""

from __future__ import annotations

import re

FOLD = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "`": "'", "\u00a0": " "})
_ESCAPED_QUOTE = re.compile(r"\\(['\"])")
_LATEX_BRACKETS = re.compile(r"\\[][()]")
_LATEX = re.compile(r"(?<!\$)\$*\\(?:boxed|text|textbf|mathrm)\s*\{([^{}]*)\}\$*")
_TAGGED = re.compile(r"<(final_?answer|answer)>\s*([^<\n]{1,300}?)\s*</\1>", re.IGNORECASE)
_KEYED = re.compile(
    r"\"(?:final_?)?answer\"\s*:\s*(?:\"([^\"\n]{1,300})\"|(-?\d[\d.,]*\d|-?\d))", re.IGNORECASE
)


def plain_reply(reply: str) -> str:
    """The reply with typography folded, escapes and LaTeX markup dropped, structured answers
    unwrapped (see ``unwrap_answers``), and its ends stripped."""
    text = reply.translate(FOLD)
    if "\\" in text:  # escaped quotes, LaTeX: rare, so only then
        text = _ESCAPED_QUOTE.sub(r"\1", text)
        text = _LATEX.sub(r"\1", _LATEX.sub(r"\1", _LATEX_BRACKETS.sub(" ", text)))
    return unwrap_answers(text).strip()


def unwrap_answers(text: str) -> str:
    """``text`` with answers given in a structure (``<answer>X</answer>``, ``{"answer": "X"}``)
    written as the line every reader looks for, ``Answer: X``; other text is left as it is."""
    if "answer" not in text.lower() or ("<" not in text and '"' not in text):
        return text
    text = _TAGGED.sub(r"\nAnswer: \2\n", text)
    return _KEYED.sub(lambda m: f"\nAnswer: {m.group(1) or m.group(2)}\n", text)
