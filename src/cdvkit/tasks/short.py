"""Read the short answer a model's free-text reply gives (TriviaQA-style tasks), and judge it.

Like the other readers, this one never guesses: ``None`` only sends the reply on to an LLM
extractor, whereas a wrong text would be judged and counted. A reply that refuses or does not
know, hedges between two answers ("Paris or Lyon"), or talks at length without saying which
words are its answer reads as ``None`` with the reason.

The answer is, in order: what ``\\boxed{}`` holds; the words after the last answer marker
("Answer: Paris", "The final answer is: Paris", "**Answer**: Paris") up to where an explanation
begins; the one phrase a reply puts in bold ("The capital of France is **Paris**."); else a
short one-line reply is itself the answer ("Paris.", "William Shakespeare"). Reasoning blocks
(``<think>...</think>``) are dropped first; one that never closes is a reply cut short.

An answer is right when it equals an accepted alias after SQuAD-style normalisation, or, being
short and not negated, contains one ("Paris, France" names "Paris"; "not Paris" does not).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from cdvkit.reply_text import unwrap_answers
from cdvkit.tasks.numeric import boxed_contents, marked_spans, split_reasoning


@dataclass(frozen=True)
class ShortReading:
    text: str | None  # the final answer as written (stripped), or None
    reason: str  # "" when text is set, else "no answer" | "refused" | "ambiguous"
    how: str = ""  # what matched: "marked", "bold", "boxed", "whole", "none"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_FOLD = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "´": "'", "`": "'", "\u00a0": " "}
)
MAX_WORDS = 8  # a whole reply, or an answer that contains an alias, is at most this long

# Saying one does not know, anywhere in what is offered as the answer.
_REFUSE = _rx(
    r"\b(?:i\s+(?:do\s+not|don't|dont)\s+know|i(?:'m|\s+am)\s+(?:not\s+(?:sure|certain|able)"
    r"|unsure|unable)|i\s+have\s+no\s+(?:idea|information|knowledge|way)|not\s+sure\b|no\s+idea"
    r"|(?:cannot|can't|can\s+not)\s+be\s+(?:determined|known|answered|said)"
    r"|(?:i\s+)?(?:cannot|can't|can\s+not|could\s+not|couldn't|unable\s+to)\s+"
    r"(?:answer|determine|say|tell|provide|find|help|assist|know|be\s+sure|identify|verify)"
    r"|(?:not\s+enough|insufficient)\s+information|(?:do\s+not|don't)\s+have\s+(?:access|enough"
    r"|the|any|information|real-time)|there\s+is\s+no\s+(?:way|answer|record))"
)
# ...or as the whole of it: "Unknown" is a refusal, "Tomb of the Unknown Soldier" is an answer.
_REFUSE_ALONE = _rx(
    r"unknown|unclear|uncertain|undetermined|n/?a|no\s+answer|unsure|idk"
    r"|not\s+(?:known|clear|certain|sure)"
    r"|(?:i\s+)?(?:cannot|can't)\s+say|pass|none\s+of\s+the\s+above|it\s+is\s+unknown"
)
_PREAMBLE = _rx(
    r"^(?:(?:simple|easy|straightforward|clear|obvious|as\s+follows|below|the\s+following|this)"
    r"\s*[:,.-]\s*|(?:therefore|thus|then|clearly|simply|likely|probably|most\s+likely|definitely"
    r"|indeed|actually|certainly|perhaps|maybe)[\s,]+"
    r"|I\s+(?:think|believe|guess)\s+(?:that\s+)?(?:it(?:'s|\s+is|\s+was)\s+)?)+"
)
_PROSE = _rx(
    r"^(?:let's|let\s+us|let\s+me|we\s+(?:need|have|can|know|must|should|will)\b|I\s+(?:will|need)"
    r"|to\s+(?:find|answer|solve|determine|identify)\b|first(?:,|\s+(?:we|let|I)\b)|step\s+\d"
    r"|here\s+(?:is|are)\b|here's|based\s+on|in\s+order\b|that\s+(?:the|it)\b)"
)
# Where the answer ends and an explanation begins.
_CUT = _rx(
    r"\n|;|\s[-–—]+\s|\s\(|\s\[|[.!?](?=\s|$)|,\s+(?:who|which|where|when|whose|the|an?|also"
    r"|directed|written|born|located|known|famous|founded|released|published|played|sung|built"
    r"|not)\b|,?\s+(?:rather\s+than|instead\s+of)\b"
    r"|,?\s+(?:because|since|as\s+(?:it|he|she|they|this|that|the)|due\s+to|given\s+that|so\s+"
    r"|but\b|although|though|however|according\s+to|based\s+on|I\s+(?:think|believe))\b"
)
_ABBREV = _rx(
    r"(?:[A-Za-z]|(?:[A-Za-z]\.)+[A-Za-z]|mr|mrs|ms|dr|st|mt|jr|sr|ft|inc|ltd|co|corp|vs|prof|gen"
    r"|col|lt|sgt|capt|rev|no|vol|approx|etc|ave|blvd|rd|hon|gov|sen|rep|pres)"
)
_LEAD = re.compile(r"^(?:\*\*(.+?)\*\*|__(.+?)__|\"(.+?)\"|'(.+?)'(?!\w))")
_BOLD = re.compile(r"\*\*([^*\n]+?)\*\*|__([^_\n]+?)__")
_OR = _rx(r"(?:either\s+)?(.+?),?\s+or\s+(.+)")
_CLOSING = _rx(
    r"[\W_]*(?:let\s+me\s+know|(?:i\s+)?hope\s+th|feel\s+free|if\s+you\s+(?:have|want|need)"
    r"|would\s+you\s+like|do\s+you\s+(?:want|need)|is\s+there\s+anything)"
)
_ASKS_BACK = _rx(
    r"\W*(?:do|does|did|are|is|could|can|would|should|which|what|where|when|how|why|who)\b"
    r".*\?[\W_]*$"
)
_LATEX = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|emph)\s*\{([^{}]*)\}")
_NEGATION = {
    "not", "no", "never", "neither", "nor", "none", "nobody", "nothing", "nowhere", "cannot",
    "isnt", "wasnt", "arent", "werent", "dont", "doesnt", "didnt", "cant", "wont", "wouldnt",
    "couldnt", "shouldnt", "hasnt", "havent", "hadnt", "aint",
}  # fmt: skip
_NONE = ShortReading(None, "no answer", "none")


def read_short(reply: str | None) -> ShortReading:
    """The short answer the reply gives as its final answer, or why none can be read."""
    if not reply or not str(reply).strip():
        return _NONE
    final, _thinking = split_reasoning(unwrap_answers(str(reply).translate(_FOLD)))
    if final is None or not final.strip():
        return _NONE
    boxes = boxed_contents(final)
    if boxes:
        return _judge(_trim(_unlatex(boxes[-1])), "boxed")
    for span, _after in reversed(marked_spans(final)):
        reading = _claim(span)
        if reading is not None:
            return reading
    lines = [line for line in final.strip().split("\n") if line.strip()]
    while len(lines) > 1 and _CLOSING.match(lines[-1]):
        lines.pop()  # "Let me know if you have any other questions!"
    bold = _bold(lines)
    if bold:
        return _judge(bold, "bold")
    if len(lines) == 1 and len(_plain(lines[0]).split()) <= MAX_WORDS:
        if _ASKS_BACK.match(lines[0]):  # "Do you mean Paris, France?" answers nothing
            return _NONE
        return _judge(_trim(lines[0], sentences=False), "whole")
    if len(lines) > 1 and _first_line(lines):
        return _judge(_trim(lines[0], sentences=False), "whole")
    if _REFUSE.search(final):
        return ShortReading(None, "refused", "none")
    return _NONE


def _claim(span: str) -> ShortReading | None:
    """The answer a marker's words give; None when they are prose that gives none."""
    text = _trim(_unlatex(span))
    if not text or (_PROSE.match(text) and not _REFUSE.search(text)):
        return None
    return _judge(text, "marked")


def _judge(text: str, how: str) -> ShortReading:
    if not text:
        return ShortReading(None, "no answer", how)
    plain = _plain(text).strip(" .!?")
    if _REFUSE.search(plain) or _REFUSE_ALONE.fullmatch(plain):
        return ShortReading(None, "refused", how)
    hedge = _OR.fullmatch(plain)
    if hedge and normalize_answer(hedge.group(1)) != normalize_answer(hedge.group(2)):
        return ShortReading(None, "ambiguous", how)
    return ShortReading(text, "", how)


def _unlatex(text: str) -> str:
    for _ in range(3):  # \text{\textbf{Paris}}
        text = _LATEX.sub(r"\1", text)
    return re.sub(r"\\[()[\]]|\$|\\,|\\ ", " ", text).replace("\\&", "&")


def _plain(text: str) -> str:
    return re.sub(r"\*\*|__", "", text)


def _trim(span: str, sentences: bool = True) -> str:
    """The answer at the start of span, without what explains it or the markup around it."""
    s = _PREAMBLE.sub("", re.sub(r"^(?:\*\*|__)\s+", "", span.strip(" \t:>#-")))
    lead = _LEAD.match(s)
    # "**Paris** (the capital)", '"Hamlet" by Shakespeare': the marked-up part, unless it hedges
    # ("**Paris** or **Lyon**").
    if lead and not re.match(r"\W*\bor\s", s[lead.end() :]):
        s = next(g for g in lead.groups() if g is not None)
    s = _PREAMBLE.sub("", s.strip(" \t*_:\"'"))
    end = len(s)
    for m in _CUT.finditer(s):
        if m.group() in ".!?" and (not sentences or _abbreviation(s, m.start())):
            continue
        end = m.start()
        break
    s = _plain(s[:end]).strip(" \t*_:,\"'")
    while s[-1:] in (".", "!", "?") and not _abbreviation(s, len(s) - 1, last=True):
        s = s[:-1].rstrip(" \t*_\"'")
    return s


def _abbreviation(text: str, dot: int, last: bool = False) -> bool:
    """Whether the period at ``dot`` ends an abbreviation ("St.", "D.C.", "J.") or a decimal.
    A lone letter ends the answer ("The answer is B."): only inside one is it an initial."""
    if text[dot] != ".":
        return False
    if text[dot + 1 : dot + 2].isdigit():
        return True
    word = re.search(r"[\w.]*$", text[:dot]).group()
    glued = text[dot - len(word) - 1 : dot - len(word)] == "-"  # "Jay-Z." is no initial
    if not word or (len(word) == 1 and (last or dot == 0 or glued)):
        return False
    return bool(_ABBREV.fullmatch(word))


def _first_line(lines: list[str]) -> bool:
    """ "Paris\n\nParis is the capital of France.": a short first line that the explanation
    below restates is the answer; "Great question!" or "Let me think." above prose is not."""
    first = _plain(lines[0]).strip(" \t#>*_")
    if len(first.split()) > 5 or first.endswith((":", "?", "!")) or _PROSE.match(first):
        return False
    words = normalize_answer(first).split()
    rest = normalize_answer(" ".join(lines[1:])).split()
    n = len(words)
    return n > 0 and any(rest[i : i + n] == words for i in range(len(rest) - n + 1))


def _bold(lines: list[str]) -> str | None:
    """The one phrase the reply puts in bold, preferring its last paragraph; headings such as
    "**Step 1:**" and a bold that merely names a marker do not count."""

    def phrases(text: str) -> set[str]:
        found = set()
        for m in _BOLD.finditer(text):
            p = (m.group(1) or m.group(2)).strip()
            if p and not p.endswith(":") and len(p.split()) <= MAX_WORDS:
                found.add(p.rstrip(".").strip())
        return {p for p in found if p and not re.search(r"\banswer\b|^step\b", p, re.I)}

    for text in (lines[-1] if lines else "", "\n".join(lines)):
        found = phrases(text)
        if len({normalize_answer(p) for p in found}) == 1:
            return sorted(found)[0]
    return None


def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles (a, an, the), single spaces; curly
    quotes and accents folded ("Pelé" is "pele"), "&" read as "and", "1,000" as "1000"."""
    t = unicodedata.normalize("NFKD", str(text).translate(_FOLD))
    t = "".join(c for c in t if not unicodedata.combining(c)).casefold()
    t = re.sub(r"(?<=\d),(?=\d)", "", t.replace("&", " and "))
    t = re.sub(r"['.]", "", t)  # marks inside a word: "O'Neill", "U.S."
    t = re.sub(r"[^\w\s]|_", " ", t)  # marks between words: "Jay-Z", "AC/DC"
    t = re.sub(r"\b(?:a|an|the)\b", " ", t)
    return " ".join(t.split())


def short_matches(answer: str, aliases: Sequence[str]) -> bool:
    """Whether ``answer`` is one of ``aliases``, or a short, un-negated answer naming one."""
    got = normalize_answer(answer or "").split()
    if not got:
        return False
    for alias in aliases or ():
        want = normalize_answer(alias or "").split()
        if not want:
            continue
        if got == want:
            return True
        if len(got) > MAX_WORDS:
            continue
        for i in range(len(got) - len(want) + 1):
            if got[i : i + len(want)] == want:
                rest = got[:i] + got[i + len(want) :]
                if not _NEGATION.intersection(rest):
                    return True
    return False
