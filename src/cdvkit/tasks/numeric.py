"""Read the number a model's free-text reply gives as its final answer (GSM8K-style tasks).

Like the multiple-choice reader, this one never guesses: a wrong number silently corrupts a
success rate, whereas ``None`` only sends the reply on to an LLM extractor. So a reply that gives
no number, refuses, says the answer "cannot be determined", or hedges between two numbers ("the
answer is 5 or 6") reads as ``None`` with the reason.

Models state their final answer in a handful of ways, tried from the most to the least explicit,
the last occurrence winning within each: GSM8K's ``#### 18``, LaTeX's ``\\boxed{18}``, an answer
marker ("The final answer is 18", "**Answer:** $18"), else the last number of the reply, which
is where step-by-step work ends. A marked answer followed by a restatement is fine ("The answer
is 18. So Janet makes $18.") and so is one followed by other numbers ("The answer is 18, which
is 3 more than 15"): the marker decides. But "Answer: Janet has 16 eggs. She eats 3 ..." opens
the working rather than giving the answer, so there the last number counts. Reasoning blocks
(``<think>...</think>``) are dropped first; if nothing after one gives an answer, only an
explicit one inside it (boxed, marked) is read. A block that never closes is a reply cut short,
whose draft numbers are no answer.

Numbers are read as people write them: "1,080", "$18.00", "45%", "12 cm", "−5", ".5", "3/4",
"1 1/2", "\\frac{3}{4}", "1.5e3", "1.5 \\times 10^3", "2.5 million", "eighteen".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cdvkit.reply_text import unwrap_answers


@dataclass(frozen=True)
class NumberReading:
    value: float | None  # the final answer as a number, or None
    text: str  # the answer as written in the reply ("" when none)
    reason: str  # "" when value is set, else "no answer" | "ambiguous" | "not a number"
    how: str = ""  # what matched: "hashes", "boxed", "marked", "last", "none"


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | flags)


# Typography that must not hide a number: the unicode minus, non-breaking and thin spaces (French
# thousands), vulgar fractions, the multiplication sign.
_FOLD = str.maketrans(
    {
        "\u2212": "-",
        "\ufe63": "-",
        "\uff0d": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2007": " ",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "½": " 1/2",
        "¼": " 1/4",
        "¾": " 3/4",
        "⅓": " 1/3",
        "⅔": " 2/3",
        "×": " \\times ",
        "·": " \\cdot ",
        "≈": "=",
    }
)

# --- reasoning blocks and boxes, shared with the short-answer reader -------------------------
_THINK_OPEN = _rx(r"<(?:think|thinking|reasoning|thought)>")
_THINK_CLOSE = _rx(r"</(?:think|thinking|reasoning|thought)>")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def split_reasoning(reply: str) -> tuple[str | None, str]:
    """(what follows the reasoning block, the reasoning itself).

    The first is None when a block opens and never closes: the reply was cut short while
    thinking. A lone closing tag counts too, because chat templates often put the opening one in
    the prompt.
    """
    closes = list(_THINK_CLOSE.finditer(reply))
    if closes:
        return reply[closes[-1].end() :], _THINK_OPEN.sub(" ", reply[: closes[-1].start()])
    opened = _THINK_OPEN.search(reply)
    if opened:
        return None, reply[opened.end() :]
    return reply, ""


def boxed_contents(text: str) -> list[str]:
    """What every ``\\boxed{...}`` holds, braces balanced ("\\boxed{\\frac{1}{2}}"), in the
    order the boxes open. One pass over the braces: a reply of many open boxes stays cheap."""
    opens = {m.end() for m in _BOX.finditer(text)}
    found, stack = [], []
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            stack.append(m.end())
        elif stack:
            start = stack.pop()
            if start in opens and text[start : m.start()].strip():
                found.append((start, text[start : m.start()]))
    return [content for _, content in sorted(found)]  # a box cut off mid-way holds nothing


# Where a reply states its answer. A bare "answer" needs a link after it, so that "to answer
# this, ..." is no marker; "## Final Answer" alone on its line announces the line below.
_LINK = r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|comes\s+(?:out\s+)?to|equals)"
_MARK = _rx(
    r"(?:\bfinal\s+answer|\banswer|^[ \t>*_#]*(?-i:A)(?=[ \t*_]*:))(?!\w)"
    r"(?:[ \t]*\([^)\n]{0,40}\))?"  # "Answer (in dollars): 18"
    r"(?:\s+to\s+(?:\"[^\"\n]{1,150}\"|[^.\n:?=]{1,60}?)(?=[ \t*_]+is\b))?"  # "answer to X is"
    rf"(?P<link>[ \t*_]*{_LINK}(?!\w)(?:[ \t*_]*[:=])?"
    r"|[ \t*_]*(?:[:=]|->|→|[ \t][-–—](?=[ \t]))"
    r"|(?=\s+(?:cannot|can't|can\s+not|could\s+not|couldn't|is\s+not|isn't)\s+(?:be\s+)?"
    r"(?:determined|calculated|computed|found|known|given|answered)))?",
    re.MULTILINE,
)
_BLANK = " \t*_#>:$\\[]()`\"'"
_TEXT_LINE = re.compile(rf"[^\n]*[^\n{re.escape(_BLANK)}][^\n]*")  # not just "\[" or "$$"
# Before the answer itself: "is simple: 18", "is therefore 18".
_PREAMBLE = _rx(
    r"^(?:(?:simple|easy|straightforward|clear|obvious|as\s+follows|below|the\s+following|this)"
    r"\s*[:,.-]\s*|(?:therefore|thus|then|clearly|simply|definitely|indeed|actually)[\s,]+)+"
)
# The words after a marker are prose, not an answer: "Answer: Let's think step by step."
_PROSE = _rx(
    r"^(?:let's|let\s+us|let\s+me|we\s+(?:need|have|can|know|must|should|will)\b|I\s+(?:will|need)"
    r"|to\s+(?:find|answer|solve|determine|calculate|get)\b|first(?:,|\s+(?:we|let|I)\b)|step\b"
    r"|here\s+(?:is|are)\b|here's|based\s+on|in\s+order|that\b|correct|right|wrong|incorrect"
    r"|reasonable|consistent|confirmed|verified|valid|accurate|below|above|simple|easy|clear"
    r"|obvious|found|given|shown|calculated|computed|derived|obtained|explained|in|on|at)\b"
)


def marked_spans(text: str) -> list[tuple[str, str]]:
    """What follows each answer marker, up to the end of its line (or the next line's text when
    the marker ends its line), and the rest of the text after that, in reply order."""
    spans = []
    for m in _MARK.finditer(text):
        stop = text.find("\n", m.end())
        stop = len(text) if stop < 0 else stop
        rest = text[m.end() : stop]
        if m.group("link") is None:
            start = text.rfind("\n", 0, m.start()) + 1
            if text[start : m.start()].strip(" \t>*_#") or rest.strip(" \t*_:#"):
                continue  # "final answer" in passing, not a heading
        if not rest.strip(_BLANK):
            nxt = _TEXT_LINE.search(text, stop)
            rest, stop = (nxt.group(), nxt.end()) if nxt else ("", len(text))
        spans.append((rest, text[stop:]))
    return spans


# --- numbers ----------------------------------------------------------------------------------
_TEXT_CMD = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|boxed|fbox|operatorname|emph"
    r"|underline)\s*\{([^{}]*)\}"
)
_FRAC = re.compile(
    r"(?P<pre>\d[ \t]*)?\\[dt]?frac\s*(?:\{(?P<a>[^{}]*)\}|(?P<a1>\d))"
    r"\s*(?:\{(?P<b>[^{}]*)\}|(?P<b1>\d))"
)
_TIMES10 = re.compile(r"\s*(?:\\times|\\cdot|\*)\s*10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?")
_POWER = re.compile(r"(?<![\d.])(\d{1,4})\s*\^\s*\(?(\d{1,2})\)?(?!\d|\.\d)")
_PLAIN = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")
_NUMBER = (
    r"(?:(?<![\w.)\]])(?P<sign>[-+]))?(?<![\w./])(?<![A-Za-z]-)"
    r"(?:{spaced}(?P<whole>\d+)[ \t]+(?P<mn>\d+)/(?P<md>\d+)"
    r"|(?P<num>\d+(?:\.\d+)?)/(?P<den>\d+(?:\.\d+)?)"
    r"|(?P<dec>(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\.\d+)(?P<exp>[eE][-+]?\d+)?)"
    r"(?!\d|/\d|\.\d|,\d{{3}})"
    r"(?:[ \t]*(?P<scale>hundred|thousand|million|billion|trillion)\b)?"
)
# In prose, "in 2 100-ml cups" is two numbers; only an answer by itself may group by spaces.
_TOKEN = _rx(_NUMBER.format(spaced=""))
_TOKEN_SPACED = _rx(_NUMBER.format(spaced=r"(?P<grouped>\d{1,3}(?:[ \t]\d{3})+)(?!\d|/)|"))
_SCALE = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DIGIT_WORDS, _TEN_WORDS = "|".join(_UNITS[1:10]), "|".join(_TENS)
_WORDS = _rx(
    rf"(?P<neg>minus\s+|negative\s+)?(?:(?P<tens>{_TEN_WORDS})(?:[-\s](?P<u>{_DIGIT_WORDS}))?"
    rf"|(?P<unit>{'|'.join(_UNITS)}))(?:\s+(?P<scale>hundred|thousand|million|billion))?"
    r"(?:\s+(?P<noun>[a-z]+))?"
)
_NOT_NOUN = {"of", "or", "and", "to", "than", "more", "less", "out", "by", "in", "plus", "minus"}


def _frac(m: re.Match[str]) -> str:
    a, b = (m["a"] if m["a"] is not None else m["a1"]), (m["b"] if m["b"] is not None else m["b1"])
    pre = f"{m['pre'].strip()} " if m["pre"] else ""  # "2\frac{1}{2}" is the mixed number 2 1/2
    if _PLAIN.fullmatch(a) and _PLAIN.fullmatch(b):
        return f"{pre}{a.strip()}/{b.strip()}"
    if not re.search(r"\d", a) or not re.search(r"\d", b):
        return f"{pre} ? "  # \frac{x}{2} is not a number
    return f"{pre}({a})/({b})"  # an expression: its numbers stay apart, so never one value


def _clean(text: str) -> str:
    """The text with typography and LaTeX markup reduced to plain numbers and words."""
    t = text.translate(_FOLD)
    if "\\" in t or "{" in t:
        t = t.replace("{,}", ",")
        t = re.sub(r"(?<=\d)\\[,!;: ]\s?(?=\d{3}(?!\d))", ",", t)  # 1\,000
        t = re.sub(r"\\(?:left|right|displaystyle)(?![a-zA-Z])", "", t)
        t = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree", " ", t)
        t = re.sub(r"\\([%$])", r"\1", t)
        t = _TIMES10.sub(r"e\1", t)
        for _ in range(4):  # inside out: \boxed{\text{\frac{1}{2}}}
            new = _TEXT_CMD.sub(r" \1 ", _FRAC.sub(_frac, t))
            if new == t:
                break
            t = new
        t = re.sub(r"\\(?:times|cdot|ast)(?![a-zA-Z])", "*", t)
        t = re.sub(r"\\(?:approx|simeq|sim|equiv)(?![a-zA-Z])", "=", t)
        t = re.sub(r"\\[a-zA-Z]+|\\.", " ", t).replace("{", "").replace("}", "")
    else:
        t = _TIMES10.sub(r"e\1", t)
    t = re.sub(r"(?<=[A-Za-z])\s*\^\s*-?\d+|(?<=[A-Za-z])_\{?\w+\}?", "", t)  # cm^2, x_1
    t = _POWER.sub(lambda m: str(int(m[1]) ** int(m[2])), t)  # 10^6
    t = re.sub(r"\b[A-Z]{1,3}\$|\$|[€£¥₹₩₽`]", "", t)  # "US$18", "-$5"
    return re.sub(r"\*\*+|_", " ", t)  # bold and italics; a single "*" multiplies


def _value(m: re.Match[str]) -> float | None:
    if m["whole"]:
        if int(m["md"]) == 0:
            return None
        v = int(m["whole"]) + int(m["mn"]) / int(m["md"])
    elif m["num"]:
        if float(m["den"]) == 0:
            return None
        v = float(m["num"]) / float(m["den"])
    else:
        digits = m.groupdict().get("grouped") or m["dec"]
        v = float(re.sub(r"[,\s]", "", digits) + (m["exp"] or ""))
    v *= _SCALE.get((m["scale"] or "").lower(), 1.0)
    return -v if m["sign"] == "-" else v


def _tokens(text: str, spaced: bool = False) -> list[tuple[int, int, float]]:
    """(start, end, value) of each number in already cleaned text."""
    found = []
    for m in (_TOKEN_SPACED if spaced else _TOKEN).finditer(text):
        v = _value(m)
        if v is not None and not math.isnan(v):
            found.append((m.start(), m.end(), v))
    return found


def _word_number(text: str) -> float | None:
    """ "eighteen", "twenty-five dollars": only a number written out and nothing else."""
    m = _WORDS.fullmatch(text.strip(" .,!?:;\"'()").lower())
    if not m or (m["noun"] and m["noun"] in _NOT_NOUN):
        return None
    v = float(_UNITS.index(m["unit"]) if m["unit"] else 10 * (_TENS.index(m["tens"]) + 2))
    v += _UNITS.index(m["u"]) if m["u"] else 0
    v *= _SCALE.get((m["scale"] or ""), 1.0)
    return -v if m["neg"] else v


def _parse(text: str) -> tuple[float | None, str, int]:
    """(value, reason, words before the number) for text meant as one answer."""
    t = _clean(text)
    parts = t.split("=")  # "3 * 6 = 18", "x = 18": what is equated last
    t = next((p for p in reversed(parts) if re.search(r"\d", p)), parts[-1])
    toks = _tokens(t, spaced=True)
    if not toks:
        word = _word_number(t)
        return (word, "", 0) if word is not None else (None, "not a number", -1)
    before = len(t[: toks[0][0]].split())
    if all(same_number(v, toks[0][2]) for _, _, v in toks):  # "18 (18.00)" says one number
        return toks[0][2], "", before
    return None, "ambiguous", before


def parse_number(text: str) -> float | None:
    """The one number that ``text``, written as an answer, states; None for none or several."""
    return _parse(str(text))[0] if text is not None else None


def numbers_in(text: str) -> list[float]:
    """Every number a text states, read as the answer reader reads one ("$1,080", "13.0")."""
    return [v for _, _, v in _tokens(_clean(text))]


def same_number(a: float, b: float, *, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def reference_number(answer: str) -> float | None:
    """The number of a dataset's reference answer: a GSM8K solution ("...\\n#### 1,080"), a
    MATH solution ending in ``\\boxed{}``, or the bare answer ("72", "$18", "1/2")."""
    if answer is None:
        return None
    text = str(answer)
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip().split("\n")[0]
    elif "\\boxed" in text or "\\fbox" in text:
        text = (boxed_contents(text) or [text])[-1]
    return parse_number(text)


# --- reading a reply --------------------------------------------------------------------------
_HASHES = re.compile(r"(?<!#)####(?!#)[ \t*]*([^\n]{1,60}?)[ \t*]*$", re.MULTILINE)
_HEADING = re.compile(r"\d+[.)]\s+[A-Za-z]")  # "#### 1. Count the eggs" is a markdown heading
_CUT = _rx(
    r"\.(?:\s|$)|[;!?](?:\s|$)|\n|,\s+(?!or\b|either\b|\d|-\d|\$)|\s\(|\s[-–—]\s(?!\s*[-\d$(])"
    r"|\s(?:because|since|as|which|given|for|so|but|hence|thus|therefore|per)\b"
)
_UNDECIDED = _rx(
    r"\b(?:unknown|undetermined|indeterminate|undefined|undecidable|unclear|unanswerable"
    r"|impossible|n/a|none|insufficient|unable|cannot|can't|can\s+not|could\s+not|couldn't"
    r"|no\s+(?:solution|answer|way|single|definitive|exact)"
    r"|not\s+(?:enough|sufficient|possible|determinable|given|specified|provided|known|defined))"
)
_GIVE_UP = _rx(
    r"cannot\s+be\s+(?:determined|calculated|computed|answered|known)"
    r"|(?:cannot|can't|can\s+not|unable\s+to|impossible\s+to|not\s+possible\s+to)\s+"
    r"(?:determine|calculate|compute|answer|solve|know|tell|say|help|assist)"
    r"|(?:not\s+enough|insufficient|missing)\s+information|(?:don't|do\s+not)\s+(?:know\b|have"
    r"\s+enough)|(?:could|can)\s+you\s+(?:please\s+)?(?:provide|clarify|specify|tell|give|share)"
    r"|please\s+(?:provide|clarify|specify)"
)
_CLOSING = _rx(
    r"[\W_]*(?:let\s+me\s+know|(?:i\s+)?hope\s+th|feel\s+free|if\s+you\s+(?:have|want|need)"
    r"|would\s+you\s+like|do\s+you\s+(?:want|need)|is\s+there\s+anything)"
)
_OR = _rx(r"[\s,]*(?:or|-|–)\s*")
_NEGATED = _rx(r"\b(?:not|never|no)\b|n't\b")
_NO_ANSWER = NumberReading(None, "", "no answer", "none")


def read_number(reply: str | None) -> NumberReading:
    """The number the reply gives as its final answer, or why none can be read."""
    if not reply or not str(reply).strip():
        return _NO_ANSWER
    final, thinking = split_reasoning(unwrap_answers(str(reply)))
    if final is None:
        return _NO_ANSWER
    reading = _read(final, loose=True)
    # A block that closes on nothing: what the model concluded while thinking, if it said so.
    if reading.reason == "no answer" and thinking.strip() and not _GIVE_UP.search(final):
        inner = _read(thinking, loose=False)
        if inner.how != "none":
            return inner
    return reading


def _read(text: str, loose: bool) -> NumberReading:
    text = text.translate(_FOLD)
    hashes = [
        s
        for s in _HASHES.findall(text)
        if re.match(r"[-+$€£¥.\d\\(]", s.strip()) and not _HEADING.match(s.strip())
    ]
    if hashes:
        return _claim(hashes[-1], "hashes", forced=True)
    boxes = boxed_contents(text)
    if boxes:
        return _claim(boxes[-1], "boxed", forced=True)
    for span, after in reversed(marked_spans(text)):
        reading = _claim(span, "marked", after=after)
        if reading is not None:
            return reading
    return _last(text) if loose else _NO_ANSWER


def _claim(span: str, how: str, forced: bool = False, after: str = "") -> NumberReading | None:
    """The answer a marker's words give; None when they are prose that gives none.

    "Answer: Janet has 16 eggs. She eats 3 ..." opens the working, not the answer: words lead
    to a number that the text after it leaves behind for others.
    """
    s = _PREAMBLE.sub("", span.strip(" \t*_:\"'`"))
    if not forced and _NEGATED.match(s) and not _UNDECIDED.search(s):
        return None  # "the answer is not clear, ..."
    digit = re.search(r"\d", s)
    cut = _CUT.search(s, digit.start() if digit else 0)
    tail = s[cut.start() :] if cut else ""
    s = (s[: cut.start()] if cut else s).strip(" \t*_:\"'`").rstrip(".,")
    if s.endswith(")") and s.count("(") < s.count(")"):  # "(Answer: 18 dollars)"
        s = s[:-1].rstrip()
    if not s:
        return NumberReading(None, "", "no answer", how) if forced else None
    value, reason, before = _parse(s)
    if (value is not None or reason == "ambiguous") and (forced or before <= 6):
        if not forced and _NEGATED.search(" ".join(_clean(s).split()[:before])):
            return None  # "the answer is not 18, it is 20": the number is the one denied
        if not forced and before > 0 and value is not None:
            later = _tokens(_clean(f"{tail}\n{after[:2000]}"))
            if len({round(v, 6) for _, _, v in later if not same_number(v, value)}) >= 2:
                return None
        return NumberReading(value, s, reason, how)
    if forced or _UNDECIDED.search(s) or (before < 0 and len(s.split()) <= 4):
        if not forced and _PROSE.match(s):
            return None
        return NumberReading(None, s, "ambiguous" if reason == "ambiguous" else "not a number", how)
    return None


def _last(text: str) -> NumberReading:
    """Last resort: the last number of the reply, where step-by-step work ends."""
    lines = text.rstrip().split("\n")
    while len(lines) > 1 and (_CLOSING.match(lines[-1]) or not lines[-1].strip()):
        lines.pop()  # "Let me know if you have any other questions about step 2!"
    t = _clean("\n".join(lines))
    toks = _tokens(t)
    if not toks:
        return NumberReading(None, "", "no answer", "none")
    start, end, value = toks[-1]
    sentence = max(t.rfind(". ", 0, start), t.rfind("\n", 0, start), t.rfind("? ", 0, start))
    if _GIVE_UP.search(t, sentence + 1):  # "... 3 apples, so the total cannot be determined."
        return NumberReading(None, "", "no answer", "last")
    if len(toks) > 1 and not same_number(toks[-2][2], value):
        gap, lead = t[toks[-2][1] : start], t[: toks[-2][0]]
        if _OR.fullmatch(gap) or (gap.strip() == "and" and re.search(r"between\s*$", lead)):
            text_ = t[toks[-2][0] : end].strip()
            return NumberReading(None, text_, "ambiguous", "last")  # "either 12 or 14"
    return NumberReading(value, t[start:end].strip(), "", "last")
