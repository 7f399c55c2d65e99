"""The simulated server's free-form world: numeric problems answered in free text.

Each problem has a correct answer with a latent margin m ~ N(margin_mean, margin_sd) and a few
near-miss wrong answers (the slips a careless solver makes: off by one, doubled, halved, off by
ten) with small random logits. A distraction sentence aimed at a number adds its strength
d ~ Exp(strength_mean) to that number's logit (a number no slip gives becomes a new wrong
answer) and removes ``pull`` * d from the correct one, so stacked sentences add up; a share
``invalid_rate`` of sentences would change the answer (the judge says so) and are twice as strong.
Replies are step-by-step text ending in "Answer: N", except a share ``unparsable_rate`` that
gives the number only in words, which the local reader cannot read and the extractor can.

A sentence's properties are a function of its text alone, as in the multiple-choice world, so
a restarted server judges every sentence as the first one did.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

FREE_FILLER = (
    "we read the problem carefully and set out each quantity that is given then combine them "
    "in the order the story describes and check the units before writing down the result"
)
_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(value: float) -> str | None:
    """A whole number below 100 in words (None otherwise)."""
    if value != int(value) or not 0 <= value < 100:
        return None
    n = int(value)
    if n < 20:
        return _SMALL[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_SMALL[ones]}" if ones else "")


_WORD_VALUES = {w: float(i) for i in range(100) if (w := words(i))}


def fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def seed_of(*parts: Any) -> int:
    """A seed from any values, the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def pick(probs: list[float], temperature: float, rng: random.Random) -> int:
    """The index a sample at ``temperature`` draws from ``probs`` (P at temperature 1): from
    P ** (1 / T), so T near zero is greedy; T = 0 is the argmax."""
    greedy = max(range(len(probs)), key=probs.__getitem__)
    if temperature <= 0.0:
        return greedy
    sharp = [p ** (1.0 / temperature) if p > 0 else 0.0 for p in probs]
    total = sum(sharp)
    if total <= 0.0 or not math.isfinite(total):
        return greedy
    return rng.choices(range(len(probs)), weights=sharp)[0]


def problem_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` grade-school problems with numeric answers, as dataset rows (question, answer)."""
    rng = random.Random(seed)
    things = ["apples", "marbles", "stamps", "books", "shells", "coins", "pencils", "cards"]
    rows = []
    for i in range(n):
        a, b, c = rng.randint(3, 40), rng.randint(2, 9), rng.randint(1, 20)
        thing = things[i % len(things)]
        question = (
            f"Problem {i}: Sam has {a} boxes with {b} {thing} in each, then gives away {c} "
            f"{thing}. How many {thing} does Sam have left?"
        )
        rows.append({"question": question, "answer": a * b - c})
    return rows


@dataclass
class FreeProblem:
    qid: int
    question: str
    answer: float


@dataclass
class FreeSentence:
    strength: float
    value: float
    invalid: bool


@dataclass
class FreeWorld:
    problems: list[FreeProblem]
    openers: tuple[str, ...]
    seed: int = 0
    margin_mean: float = 3.0
    margin_sd: float = 1.5
    wrong_sd: float = 0.5
    strength_mean: float = 0.8
    pull: float = 0.5
    invalid_rate: float = 0.1
    unparsable_rate: float = 0.1
    reply_words: tuple[int, int] = (80, 360)  # a step-by-step reply's length, in words

    def __post_init__(self) -> None:
        self._by_len = sorted(self.problems, key=lambda p: -len(p.question))
        alt = "|".join(re.escape(o) for o in self.openers)
        self._sentence = re.compile(rf"(?:{alt}) the figure (-?[\d.]+) \(note \d+\)\.")

    def identify(self, text: str) -> FreeProblem | None:
        for p in self._by_len:
            if p.question in text:
                return p
        return None

    def slips(self, p: FreeProblem) -> list[float]:
        a = p.answer
        out = []
        for v in (a + 1, a - 1, a * 2, a / 2, a + 10):
            if v != a and v >= 0 and v not in out:
                out.append(v)
        return out

    def _present(self, text: str) -> list[FreeSentence]:
        found = []
        for m in self._sentence.finditer(text):
            rng = random.Random(seed_of(self.seed, "fs", m.group(0)))
            invalid = rng.random() < self.invalid_rate
            strength = rng.expovariate(1.0 / self.strength_mean) * (2.0 if invalid else 1.0)
            found.append(FreeSentence(strength, float(m.group(1)), invalid))
        return found

    def probs(self, p: FreeProblem, text: str) -> dict[float, float]:
        """P(answer) at temperature 1 over the correct answer and the wrong ones in play."""
        rng = random.Random(seed_of(self.seed, "fq", p.qid))
        logits = {p.answer: rng.gauss(self.margin_mean, self.margin_sd)}
        for v in self.slips(p):
            logits[v] = rng.gauss(0.0, self.wrong_sd)
        for s in self._present(text):
            logits[s.value] = logits.get(s.value, 0.0) + s.strength
            logits[p.answer] -= self.pull * s.strength
        top = max(logits.values())
        weights = {v: math.exp(x - top) for v, x in logits.items()}
        total = sum(weights.values())
        return {v: w / total for v, w in weights.items()}

    def answer(self, p: FreeProblem, text: str, temperature: float, sample: int) -> str:
        probs = self.probs(p, text)
        values = list(probs)
        rng = random.Random(seed_of(self.seed, "fa", text, sample))
        chosen = values[pick([probs[v] for v in values], temperature, rng)]
        steps = " ".join(rng.choices(FREE_FILLER.split(), k=rng.randint(*self.reply_words)))
        reasoning = f"Let me think step by step: {steps}."
        spoken = words(chosen)
        if spoken is not None and rng.random() < self.unparsable_rate:
            return f"{reasoning} So in the end it comes to {spoken}, all things considered."
        return f"{reasoning}\nAnswer: {fmt(chosen)}"

    def wrong_answers(self, p: FreeProblem, k: int, sample: int) -> list[str]:
        slips = self.slips(p)
        random.Random(seed_of(self.seed, "fw", p.qid, sample)).shuffle(slips)
        return [fmt(v) for v in slips[:k]]

    def propose(self, p: FreeProblem, node_text: str, wrong: str, sample: int) -> str:
        rng = random.Random(seed_of(self.seed, "fp", p.qid, node_text, wrong, sample))
        value = _number(wrong)
        shown = fmt(value) if value is not None else wrong
        return f"{rng.choice(self.openers)} the figure {shown} (note {rng.randrange(10**6)})."

    def changes_answer(self, distracted: str) -> bool:
        return any(s.invalid for s in self._present(distracted))


def _number(text: str) -> float | None:
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    if m:
        return float(m.group(0))
    word = text.strip().lower().rstrip(".")
    return _WORD_VALUES.get(word)


# --- the roles' replies, from the prompts cdvkit's free-form roles send -------------------------


def free_role(system: str) -> str | None:
    """The role of a free-form prompt (None: not one of cdvkit's free-form prompts)."""
    if "read the final answer out of free-text replies" in system:
        return "extractor"
    if "You grade answers" in system:
        return "grader"
    if "You check distracted free-form questions" in system:
        return "judge"
    if "plausible WRONG final answers" in system:
        return "wrong"
    if "benchmark of contextual distraction" in system and "wrong answer" in system:
        return "proposer"  # the multiple-choice proposer speaks of wrong options
    if system.startswith(("You answer math word problems", "You answer questions")):
        return "target"
    return None


def free_reply(world: FreeWorld, role: str, user: str, temperature: float, sample: int) -> str:
    if role == "target":
        p = world.identify(user)
        return world.answer(p, user, temperature, sample) if p else "I cannot solve this one."
    if role == "extractor":
        reply = user.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        marked = re.findall(r"Answer: (-?[\d.]+)", reply)
        if marked:
            return marked[-1]
        spoken = re.search(r"comes to ([a-z-]+)", reply)
        value = _WORD_VALUES.get(spoken.group(1)) if spoken else None
        return fmt(value) if value is not None else "NONE"
    question = user.split("Question:\n", 1)[-1].split("\n\n", 1)[0]
    p = world.identify(question) or world.identify(user)
    if role == "wrong":
        k = int(re.search(r"List (\d+)", user).group(1)) if "List " in user else 3
        return json.dumps({"wrong_answers": world.wrong_answers(p, k, sample) if p else []})
    if role == "proposer":
        if p is None:
            return "Nothing comes to mind."
        if "Wrong answers to make plausible:\n" in user:
            listed = user.split("Wrong answers to make plausible:\n", 1)[1].split("\n\n")[0]
            rows = [re.match(r"(\d+)\. (.*)", line) for line in listed.split("\n")]
            return json.dumps(
                {m.group(1): world.propose(p, question, m.group(2), sample) for m in rows if m}
            )
        wrong = user.split("Wrong answer to make plausible: ", 1)[1].split("\n")[0]
        return world.propose(p, question, wrong, sample)
    if role == "judge":
        distracted = user.split("Question with added context:\n", 1)[1].split("\n\nDoes")[0]
        changes = world.changes_answer(distracted)
        reason = "it changes the answer" if changes else "the answer is unchanged"
        return json.dumps({"changes_answer": changes, "reason": reason})
    # grader
    reply = user.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
    ref = _number(user.split("Reference answer: ", 1)[1].split("\n")[0])
    spoken = re.search(r"comes to ([a-z-]+)", reply)
    got = _WORD_VALUES.get(spoken.group(1)) if spoken else _number(reply.rsplit("Answer:", 1)[-1])
    return json.dumps({"correct": got is not None and got == ref, "reason": "compared"})
