"""Read which choice a model's free-text reply gives as its final answer.

Every part of the tool (search goal, evaluation, reports) must agree on what a reply said, so
there is one reader. It never guesses: a wrong index silently corrupts a success rate, whereas
``None`` only sends the reply on to an LLM extractor. Two different final answers stated apart,
an answer that is not among the choices, or a reply that settles on nothing all give ``None``.
A hedged answer ("the answer is 'garage' or 'toolbox'") is read as the choice it names first, the
model's own first pick, which is also how the paper's released labels read such replies; the
reading says so (``how="hedge"``) so a caller can tell.

Replies come in two dialects. With the tool's own prompt models end on a letter ("Answer: B").
With the paper's prompt (choices shown as a Python list, answered by text) they quote a choice's
text after a phrase such as "the final answer is:". A choice's text is tried before a letter
because choices may begin with a word that looks like one ("a mine", "I have no comment.").
Step-by-step replies name other choices on the way, so what counts is the LAST place where the
reply states an answer, and a choice merely mentioned in passing never counts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdvkit.reply_text import FOLD, plain_reply

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Reading:
    index: int | None  # 0-based choice index, or None
    reason: str  # "" when index is set, else "no answer" | "ambiguous" | "outside"
    how: str = ""  # what matched: "letter", "text", "number", "bare", "tail", "hedge", "none"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Where a reply states its answer. A bare "answer" needs a verb or a colon after it, so that
# "I can't answer a question like that" is not read as choice A.
_LINK = r"[\s*_]*(?:is|would\s+be|will\s+be|should\s+be|must\s+be|seems\s+to\s+be|remains)\b"
_QUAL = (
    r"(?:best|correct|right|appropriate|accurate|fitting|suitable|likely|logical|reasonable"
    r"|sensible|plausible|proper|valid|ideal|closest|obvious|final|only|true|my|selected|chosen"
    r"|preferred|most\s+\w+)"
)
_MARK = _rx(
    r"(?P<noun>\bfinal\s+(?:answer|response|choice|selection|verdict)\b|\banswer\b"
    r"|(?<![\w ])response(?=[*_]*:)"
    rf"|\b{_QUAL}(?:\s+\w+)?\s+(?:choice|option|selection|response|fit|match)\b)"
    r"(?:,[^,\n]{1,80},)?(?:\s+(?:here|then|overall|therefore|thus))?"
    # "the answer that best fits the description is", "the best answer from the choices is"
    r"(?:\s+(?:that|which|from|among|of|in|based\s+on|given|for|to)\b"
    rf"[^.\n:]{{0,80}}?(?={_LINK}))?(?P<link>{_LINK}[*_]*)?"
    r"(?P<colon>[\s*_]*(?:[:=]|\s[-–—](?=\s))[*_]*)?"
    r"|(?P<pick>\bI(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|select|pick|go\s+with)\b:?)",
)
# The other way round: "B is the correct answer", "'empty' is the best choice".
_REVERSE = _rx(
    r"(?<![*_\"')\]\s])[*_\"')\]]*\s+(?:is|would\s+be|seems\s+to\s+be|stands\s+out\s+as"
    r"|emerges\s+as)\s+(?:the|my)\s+"
    r"(?:(?!wrong|incorrect|worst|least|less|false)\w+\s+){0,3}(?:answer|choice|option|fit)\b",
)
# Words between the marker and the answer: "is most likely the option 'X'", "is Choice 2: 'X'".
_FILLER = _rx(
    r"(?:[\s,]*\b(?:most\s+likely|likely|probably|clearly|definitely|indeed|still|thus|therefore"
    r"|then|simply|either|both|that|letter|(?:the\s+)?(?:option|choice)(?:\s*\d+\s*[:.)-]?)?"
    r"|would\s+be|is|to\s+be|the|an?|in)\b)+[\s,:]*",
)
_OPEN = re.compile(r"[\s*_\"'\[(>#-]*")
_NUMBER = _rx(r"(?:the\s+)?(?:option|choice)\s*(?:no\.?\s*|number\s*|#\s*)?(\d{1,2})(?![\d.,]\d)")
# "the answer is the second option"; "Final answer: 2" (alone on its line, choices counted from 1).
_ORDINAL = _rx(
    r"(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)\s+"
    r"(?:option|choice|one|answer)\b"
)
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
_LONE_NUMBER = re.compile(r"\(?(\d{1,2})\)?[.*_]*[ \t]*(?:\n|$)")
# "Option B is correct", and a line "B is correct." that closes a reply.
_OPTION_IS = _rx(
    r"\b(?:option|choice)\s*\(?((?-i:[A-Z]))\)?[*_:]*\s+(?:is|seems)\s+(?:the\s+)?"
    r"(?:correct|right|best|true|accurate)\b"
    r"|(?:^|\n)[ \t*_]*\(?((?-i:[A-Z]))\)?[*_]*\s+is\s+(?:the\s+)?(?:correct|right)[.!*_ \t]*$"
)
# A reply's closing words that settle on a letter: "..., so it must be B.", "Based on that, B."
_SETTLED_LETTER = _rx(
    r"(?:\b(?:so|thus|therefore|hence|must\s+be|it's|it\s+is|answer\s+is|above|that|all|pick"
    r"|choose|go\s+with)\b[\s,:*_]*)\(?((?-i:[A-Z]))\)?[*_]*(?P<rest>\s*[:.)-]\s*[^\n]*?)?"
    r"[*_]*[.!]?[*_]*\s*$"
)
_QUOTES, _CLOSERS = "\"'*[(", "\"'*_])"
# An unquoted choice must end the claim here: "the answer is a mine shaft" does not name "a mine".
_AFTER = _rx(
    r"\s*(?:$|\n)|[.,;:!?)\]\"'*_/]|\s+(?:because|as|since|which|given|due|for|here|and|but|so"
    r"|or|this|it|with|while|though|although|over|rather|instead|[-–—(])",
)
_OR = _rx(r"[\s*_\"')\]]*(?:,|/|&|\bor\b|\band\b|\bvs\.?)\s*")
_NONE = _rx(
    r"[\s*_\"'\[(]*(?:none\b|neither\b|n/a\b|no\s+(?:correct|valid|single|suitable|answer)\b"
    r"|(?:i\s+)?(?:cannot|can't|can\s+not)\b|unable\b)"
)
_BARE_NONE = _rx(r"[\W_]*(?:none|n/a|no answer|none of the above)[\W_]*")
_LETTER = re.compile(r"([A-Za-z])(?![\w'])")
_LABEL_GAP = re.compile(r"[.):\]*_\s(–—\"'-]*")
_BECAUSE = _rx(r"\s+(?:because|since|as|[-–—])\s")
_PREFIX = _rx(
    r"^(?:(?:final\s+)?answer|(?:selected\s+)?(?:option|choice)|therefore|thus|hence"
    r"|in\s+conclusion|conclusion)\s*[:.,-]?\s*"
)
_BULLET = re.compile(r"\s*(?:[-*•+]\s|\d+[.)])")
_CLOSING = _rx(r"\W*(?:let\s+me\s+know|(?:i\s+)?hope\s+th|feel\s+free|if\s+you\s+(?:have|want))")
_DOUBT = _rx(
    r"\b(?:not|no|never|neither|nor|incorrect|wrong|unlikely|less|rather|instead|unlike|except"
    r"|however|although|though|while|but|or|if)\b|n't\b",
)
# A heading that announces the conclusion, on the line before it: "### Conclusion".
_CONCLUDING = _rx(r"(?:^|\n)[#*_>\s]*(?:conclusion|summary|final\s+answer|answer)[:*_\s]*\n[ \t]*$")
_SETTLE = _rx(r"\b(?:therefore|thus|hence|so|conclusion|best|most|answer|correct|choose|select)\b")


@dataclass(frozen=True)
class _Hit:
    index: int | None
    reason: str
    how: str
    pos: int = 0
    final: bool = False
    end: int = 0  # where a choice's text ends: words inside a quoted answer are not markers


class _Choices:
    """The choices as patterns: any case, any spacing, with or without a trailing period."""

    def __init__(self, choices: Sequence[str]) -> None:
        cores = [str(c).translate(FOLD).strip(" \t\n\"'*").rstrip(".").strip() for c in choices]
        self.n, self.longest = len(cores), max(map(len, cores), default=0)
        self.pats = [_pattern(c) if c else None for c in cores]
        # Identical choices are one answer; the first index stands for them all.
        keys = [" ".join(c.lower().split()) for c in cores]
        self.canon = [keys.index(k) for k in keys]
        # A choice that starts with a digit: then a bare number may be a choice's text, never
        # its position.
        self.numeric = any(c[:1].isdigit() for c in cores)

    def text_at(self, text: str, pos: int) -> tuple[int, int] | None:
        """The longest choice whose text starts exactly at pos, as (index, end)."""
        best = None
        for i, pat in enumerate(self.pats):
            m = pat.match(text, pos) if pat else None
            if m and (best is None or m.end() > best[1]):
                best = (self.canon[i], m.end())
        return best

    def mentions(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, index) of choices named; "Irish." in "The Irish speak Irish." is not."""
        found = {
            (m.start(), m.end(), self.canon[i])
            for i, pat in enumerate(self.pats)
            for m in (pat.finditer(text) if pat else ())
            if m.start() == 0 or not text[m.start() - 1].isalnum()
        }
        kept, reach = [], -1
        for f in sorted(found, key=lambda f: (f[0], -f[1])):
            if f[1] > reach:  # not inside a longer mention that starts earlier or at once
                kept.append(f)
            reach = max(reach, f[1])
        return kept

    def letter(self, letter: str, pos: int = 0) -> _Hit:
        index = LETTERS.index(letter.upper())
        if index >= self.n:
            return _Hit(None, "outside", "letter", pos)
        return _Hit(self.canon[index], "", "letter", pos)


@functools.lru_cache(maxsize=16384)
def _pattern(core: str) -> re.Pattern[str]:
    # Shuffled children list the same choices in new orders: each text is compiled once.
    edge = r"(?!\w)" if core[-1].isalnum() else ""
    return re.compile(r"\s+".join(map(re.escape, core.split())) + r"\.?" + edge, re.IGNORECASE)


def read_answer(reply: str | None, choices: Sequence[str]) -> Reading:
    """Which of ``choices`` the reply gives as its final answer, or why none can be read."""
    if not reply or not reply.strip() or not choices:
        return Reading(None, "no answer")
    text = plain_reply(reply)
    ch = _choices(tuple(str(c) for c in choices))
    return _quick(text, ch) or _general(text, ch)


def _general(text: str, ch: _Choices) -> Reading:
    if not text or _BARE_NONE.fullmatch(text):
        return Reading(None, "no answer", "bare")
    if "\n" not in text and len(text) < 200:  # an extractor's reply, or a model's bare answer
        whole = _whole(text, ch)
        if whole:
            return Reading(whole.index, whole.reason, "bare")

    hits: list[_Hit] = []
    spans: list[tuple[int, int]] = []
    for m in _MARK.finditer(text):
        if spans and m.start() < spans[-1][1]:
            continue
        if m.group("link") or m.group("colon") or m.group("pick") or _heading(text, m):
            hit = _claim(text, m.end(), ch)
            noun = (m.group("noun") or "").lower()
            final = "final" in noun or (noun == "answer" and _line_start(text, m.start()))
            if hit:
                hits.append(_Hit(hit.index, hit.reason, hit.how, m.start(), final))
                spans.append((m.end(), hit.end))
    for m in _REVERSE.finditer(text):
        hit = _named_before(text, m.start(), ch)
        if hit and not any(a <= m.start() < b for a, b in spans):
            hits.append(hit)
    for m in _OPTION_IS.finditer(text):
        if not any(a <= m.start() < b for a, b in spans):
            hits.append(ch.letter(m.group(1) or m.group(2), m.start()))
    # A line holding nothing but a choice ends many replies ("**B**", "'empty'") or follows a
    # line that announces it ("...is:"). Such lines in a row are a list of the choices instead.
    lines = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+", text) if m.group().strip()]
    while len(lines) > 1 and _CLOSING.match(lines[-1][1]):
        lines.pop()  # "Let me know if you have any other questions!"
    alone = [None if _BULLET.match(line) else _whole(line, ch) for _, line in lines]
    for k, (start, _line) in enumerate(lines):
        last = k == len(lines) - 1
        announced = k > 0 and lines[k - 1][1].rstrip(" *_").endswith(":")
        listed = (k > 0 and alone[k - 1]) or (not last and alone[k + 1])
        if alone[k] and (last or announced) and not listed:
            hits.append(_Hit(alone[k].index, alone[k].reason, alone[k].how, start, last))
    if not hits:
        return _tail(text, ch)
    hits.sort(key=lambda h: h.pos)
    # Two different final answers: the reply contradicts itself.
    if len({h.index if h.index is not None else h.reason for h in hits if h.final}) > 1:
        return Reading(None, "ambiguous", hits[-1].how)
    return Reading(hits[-1].index, hits[-1].reason, hits[-1].how)


@functools.lru_cache(maxsize=4096)
def _choices(choices: tuple[str, ...]) -> _Choices:
    # A node's n samples, and its siblings, share their choices: compile their patterns once.
    return _Choices(choices)


# The reply cdvkit's own prompt asks for: reasoning, then a last line "Answer: X".
_LAST_LINE = _rx(r"(?:^|\n)[ \t]*[*_]*answer[*_]*\s*:[*_\s]*\(?([A-Z])\)?[*_.]*[ \t]*$")


def _quick(text: str, ch: _Choices) -> Reading | None:
    """The common case, read without the general machinery: a single "answer" marker, on the
    last line, followed by a letter that is no choice's text. Anything else goes the long way."""
    m = _LAST_LINE.search(text)
    if m is None or text.lower().count("answer") != 1 or "final" in text.lower():
        return None
    letter = m.group(1)
    if any(p is not None and p.fullmatch(letter) for p in ch.pats):
        return None  # "B" is also a choice's text: the text reading decides
    hit = ch.letter(letter)
    return Reading(hit.index, hit.reason, "letter")


def _claim(text: str, pos: int, ch: _Choices) -> _Hit | None:
    """What the words after a marker give as the answer; None when they are prose."""
    first = _OPEN.match(text, pos).end()
    starts = [first]
    filler = _FILLER.match(text, first)
    if filler:
        starts.append(_OPEN.match(text, filler.end()).end())
    for p in starts:
        quoted = any(q in text[pos:p] for q in _QUOTES)
        hit = _text_claim(text, p, ch, quoted) or _letter_claim(text, p, ch)
        if hit:
            return hit
    numbered = _NUMBER.match(text, first)
    if numbered and 1 <= int(numbered.group(1)) <= ch.n:
        # "the best answer is Choice 3": choices shown as a list are counted from 1.
        return _Hit(ch.canon[int(numbered.group(1)) - 1], "", "number")
    ordinal = _ORDINAL.match(text, first)
    if ordinal:
        word = ordinal.group(1).lower()
        k = ch.n - 1 if word == "last" else _ORDINALS.index(word) if word in _ORDINALS else 9
        return _Hit(ch.canon[k], "", "number") if k < ch.n else _Hit(None, "outside", "number")
    alone = _LONE_NUMBER.match(text, first)
    if alone and not ch.numeric and 1 <= int(alone.group(1)) <= ch.n:
        # A number alone after "Answer:" counts the choices from 1 (none of them is a number).
        return _Hit(ch.canon[int(alone.group(1)) - 1], "", "number")
    if _NONE.match(text, first):
        return _Hit(None, "no answer", "none")
    # A quoted or bold answer that is none of the choices is a claim all the same.
    if any(q in text[pos:first] for q in _QUOTES) and text[first : first + 1].isalnum():
        return _Hit(None, "outside", "text")
    return None


def _text_claim(text: str, p: int, ch: _Choices, quoted: bool) -> _Hit | None:
    found = ch.text_at(text, p)
    if not found:
        return None
    index, end = found
    nxt = text[end : end + 2]
    if quoted:  # the quotation must close here, or it names something longer than the choice
        if not (nxt[:1] and (nxt[0] in _CLOSERS or (nxt[0] in ".,;:!?" and nxt[1:] in _CLOSERS))):
            return None
    elif text[end - 1] != "." and not _AFTER.match(text, end):
        return None  # (a period the choice's pattern took in ends the claim too)
    hit = _Hit(index, "", "text", end=end)
    return _other(text, end, ch, hit) or hit


def _letter_claim(text: str, p: int, ch: _Choices) -> _Hit | None:
    """A letter counts only standing alone: "B", "(B)", "B.", "**B**", "B) <text of B>"."""
    m = _LETTER.match(text, p)
    if not m:
        return None
    letter, end = m.group(1), m.end()
    nxt = text[end : end + 2]
    named = ch.text_at(text, _LABEL_GAP.match(text, end).end())
    alone = not nxt.strip() or nxt[0] in "\n)]:*_\"'" or (nxt[0] == "." and not nxt[1:].isalnum())
    if letter.isupper():  # a lower-case "a" or "i" followed by more words is English, not a label
        alone = alone or nxt[0] in ",;" or bool(named) or bool(_BECAUSE.match(text, end))
    if not alone:
        if not letter.isupper():
            return None
        first = ch.letter(letter)
        return _other(text, end, ch, first, letter=True) if first.index is not None else None
    hit = ch.letter(letter)
    if hit.index is None:
        return hit
    if named and named[0] != hit.index:  # "B. <text of C>" contradicts itself
        return _Hit(None, "ambiguous", "letter")
    return _other(text, end, ch, hit, letter=True) or hit


def _other(text: str, end: int, ch: _Choices, first: _Hit, letter: bool = False) -> _Hit | None:
    """'A or B', "'garage' or 'toolbox'": a hedge reads as its first choice, marked as such."""
    m = _OR.match(text, end)
    if not m:
        return None
    p = _OPEN.match(text, m.end()).end()
    found = ch.text_at(text, p)
    other = found[0] if found else None
    lm = _LETTER.match(text, p)
    if other is None and letter and lm and lm.group(1).isupper():
        other = ch.letter(lm.group(1)).index
        other = -2 if other is None else other
    if other is None or other == first.index:
        return None
    return _Hit(first.index, first.reason, "hedge", end=first.end)


def _whole(line: str, ch: _Choices) -> _Hit | None:
    """A line that is nothing but one choice or one letter, perhaps after "Answer:"."""
    full = line.strip().strip("*_#>\"'[]()` ")
    core = _PREFIX.sub("", full).strip("*_\"' ")
    for words in (full, core):  # a choice may itself begin with "answer"
        found = ch.text_at(words, 0)
        if found and not words[found[1] :].strip(" .!\"'*_)]"):
            return _Hit(found[0], "", "text")
    labelled = re.fullmatch(r"\(?([A-Za-z])[.):]\s+(.+)", core)  # "B: <text of B>"
    if labelled:
        found = ch.text_at(labelled.group(2), 0)
        hit = ch.letter(labelled.group(1))
        return hit if found and found[0] == hit.index else None
    m = re.fullmatch(r"\(?([A-Za-z])[.)]?", core)
    return ch.letter(m.group(1)) if m else None


def _named_before(text: str, end: int, ch: _Choices) -> _Hit | None:
    """The choice or letter that ends exactly at end, as in "'empty' is the best choice"."""
    seg = text[max(text.rfind("\n", 0, end) + 1, end - ch.longest - 20) : end]
    whole = [f for f in ch.mentions(seg) if f[1] == len(seg)]
    if whole and re.search(r"(?:^|[\s\"'*_(\[:,])$", seg[: whole[0][0]]):
        return _Hit(whole[0][2], "", "text", end)
    m = re.search(r"(?:^|[\s(*_:])\(?([A-Z])\)?[*_]*$", seg)
    if not m:
        return None
    return ch.letter(m.group(1), end)


def _line_start(text: str, pos: int) -> bool:
    start = text.rfind("\n", 0, pos) + 1
    return pos - start <= 12 and not text[start:pos].strip(" #*_>")


def _heading(text: str, m: re.Match[str]) -> bool:
    """'## Final Answer' or '**Answer**' alone on its line, the answer on the lines below."""
    stop = text.find("\n", m.end())
    rest = text[m.end() : stop if stop >= 0 else None]
    return _line_start(text, m.start()) and not rest.strip(" *_:")


def _tail(text: str, ch: _Choices) -> Reading:
    """Last resort: a closing sentence that settles on exactly one choice without doubting it.

    Replies cut short by a token limit stop while weighing the choices one by one, so a choice
    named at the end counts only in a finished sentence that sounds like a conclusion.
    """
    if text[-1] not in ".!?)]\"'*":
        return Reading(None, "no answer")
    settled = _settled_letter(text, ch)
    if settled is not None:
        return settled
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    for k, para in enumerate(reversed(paras[-2:])):
        found = ch.mentions(para)
        if k == 0 and not found and _MARK.search(para):
            break  # it ends on an answer we could not read; what comes before is not it
        if len({i for _, _, i in found}) > 1:
            return Reading(None, "no answer", "tail")
        if found:
            # The sentence around the mention, less the choice's own words (which may say "not").
            start, end, index = found[-1]
            left = max(para.rfind(". ", 0, start), para.rfind("\n", 0, start)) + 1
            stop = re.compile(r"\.\s|\n").search(para, end)
            before, after = para[left:start], para[end : stop.start() if stop else None]
            listed = _BULLET.match(before) or re.match(r"[*_\"']*\s*[:-]", after)
            settled = _SETTLE.search(before) or _CONCLUDING.search(para[:left])
            if listed or _DOUBT.search(f"{before} {after}") or not settled:
                return Reading(None, "no answer", "tail")
            return Reading(index, "", "tail")
    return Reading(None, "no answer")


def _settled_letter(text: str, ch: _Choices) -> Reading | None:
    """The letter the reply's last sentence settles on ("..., so it must be B."), when that
    sentence names no other choice and doubts nothing after its settling word."""
    lines = [line for line in text.splitlines() if line.strip()]
    while len(lines) > 1 and _CLOSING.match(lines[-1]):
        lines.pop()
    last = lines[-1] if lines else ""
    sentence = last[max(last.rfind(". ", 0, max(len(last) - 3, 0)) + 1, 0) :]
    m = _SETTLED_LETTER.search(sentence)
    if m is None or _DOUBT.search(m.group(0)):
        return None
    hit = ch.letter(m.group(1))
    rest = (m.group("rest") or "").strip(" :.)-*_")
    if rest:
        named = ch.text_at(rest, 0)
        if not named or named[0] != hit.index:
            return None  # "B: <text of C>" contradicts itself; "B. Then..." is no answer
    return Reading(hit.index, hit.reason, "tail")


def read_choice(reply: str | None, choices: Sequence[str]) -> int | None:
    return read_answer(reply, choices).index
