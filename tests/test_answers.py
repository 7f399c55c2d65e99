"""The reader of a reply's final answer: real model replies, hand-written formats, properties."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cdvkit import answers
from cdvkit.answers import Reading, read_answer, read_choice

CITIES = ["Paris", "London", "Berlin", "Madrid"]
PITS = ["a quarry", "a mine", "a cave", "a pit"]
MATH = [
    "Linear programming.",
    "the Fundamental Theorem of Calculus.",
    "Calculus.",
    "It's called the Fundamental Theorem of Arithmetic.",
    "Arithmetic.",
]
IRISH = ["Irish.", "The Irish speak Irish.", "In Ireland, almost everyone speaks English."]
SPOTS = ["closet", "garage", "cupboard", "toolbox", "mail box"]
DINING = ["new york city", "dining in", "jewish neighborhoods", "dining"]
COAST = [
    "Everyone on the East Coast lies about election fraud.",
    "Everyone on the East Coast lies about their salary.",
    "I have no comment.",
    "Everyone on the East Coast lies about their work.",
]
TEN = [
    "Nothing.",
    "You will be cursed.",
    "You will have bad luck.",
    "I have no comment.",
    "You will die.",
    "You will get sick.",
    "You will be haunted.",
    "You will lose money.",
    "You will see ghosts.",
    "You will be trapped.",
]
STEPS = "Let's think step by step. A (Paris) is in France. C is also wrong, and so is D.\n\n"


def _shared() -> Path:
    env = os.environ.get("CDV_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared"


CORPUS = _shared() / "data/replies/real_mc_replies.jsonl"


@pytest.mark.skipif(not CORPUS.exists(), reason=f"real reply corpus not found at {CORPUS}")
def test_real_replies_land_on_the_right_side() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    right, wrong, misses = 0, 0, []
    for row in rows:
        reading = read_answer(row["reply"], row["choices"])
        if reading.index is None:
            misses.append(("none", row, reading))
            continue
        gives_answer = row["choices"][reading.index] == row["answer"]
        if gives_answer == (row["verdict"] == "right"):
            right += 1
        else:
            wrong += 1
            misses.append(("WRONG", row, reading))
    report = "\n".join(
        f"{kind} {row['id']} {row['model']} verdict={row['verdict']} {reading}: "
        f"...{row['reply'][-160:]!r}"
        for kind, row, reading in misses
    )
    # What stays off the right side here: a refusal and an answer that is no choice (None), and
    # two replies labelled "wrong" that plainly give the labelled answer.
    assert right / len(rows) >= 0.97, f"{right}/{len(rows)} on the right side\n{report}"
    assert wrong / len(rows) <= 0.01, f"{wrong}/{len(rows)} on the wrong side\n{report}"


CASES = [
    # Letters, in the forms models write them.
    ("Answer: B", CITIES, 1),
    (STEPS + "So the answer is B", CITIES, 1),
    (STEPS + "The answer is (B).", CITIES, 1),
    (STEPS + "**Answer: B**", CITIES, 1),
    (STEPS + "**Answer:** C", CITIES, 2),
    (STEPS + "**B**", CITIES, 1),
    ("(B)", CITIES, 1),
    ("B)", CITIES, 1),
    ("B.", CITIES, 1),
    ("b", CITIES, 1),
    (" D \n", CITIES, 3),
    (STEPS + "Final Answer: D", CITIES, 3),
    (STEPS + "final answer: \\boxed{B}", CITIES, 1),
    (STEPS + "Final answer: $\\boxed{\\text{C}}$", CITIES, 2),
    (STEPS + "Answer: B. London", CITIES, 1),
    ("B: London", CITIES, 1),
    (STEPS + "### Final Answer\n\n**B) London**", CITIES, 1),
    (STEPS + "The correct option is C.", CITIES, 2),
    (STEPS + "I choose D.", CITIES, 3),
    (STEPS + "The answer is B because London is the capital.", CITIES, 1),
    ("The answer is A? No. Checking again, the answer is C.\n\nAnswer: C", CITIES, 2),
    ("The answer is not A.\nAnswer: B", CITIES, 1),
    # Choice texts, as the paper's prompt asks for them.
    ("The model's final answer is: **'garage'**", SPOTS, 1),
    ("Therefore, the most fitting answer is:\n\n'" + COAST[1] + "'", COAST, 1),
    ("Answer: a mine", PITS, 1),
    ("Final answer: I have no comment.", TEN, 3),
    ("Hmm.\n\nFinal answer: I have no comment.", TEN, 3),
    ("The answer is “London”.", CITIES, 1),
    ('After all that, the answer is "london"', CITIES, 1),
    ("Reasoning about Paris and Berlin.\n\n**London**", CITIES, 1),
    ("Considering this, the best choice is **Calculus.**", MATH, 2),
    ("The answer is: 'the Fundamental Theorem of Calculus.'", MATH, 1),
    ("The answer is: 'Linear programming'", MATH, 0),
    ("The most accurate answer is: **'Irish.'**", IRISH, 0),
    ("The most accurate answer is: **'The Irish speak Irish.'**", IRISH, 1),
    ("From the choices, the correct answer is:\n\n['dining in']", DINING, 1),
    ("Therefore, the model's final answer is: **dining**.", DINING, 3),
    (
        "'dining in' is vague and 'dining' is vaguer.\n\nThe final answer is 'New York City'.",
        DINING,
        0,
    ),
    ("The answer that best fits the description is **'toolbox'**.", SPOTS, 3),
    ("The best answer is:\n\n**Choice 2: 'garage'**", SPOTS, 1),
    ('The answer is likely a "closet". Closets are quiet spaces.', SPOTS, 0),
    ("Let me weigh them.\n\nBased on all of this, I'd pick 'cupboard' in the end.", SPOTS, 2),
    ("Therefore, 'garage' is the most appropriate choice.", SPOTS, 1),
    ("Dark places: a garage or a toolbox. I'd say the garage is the best fit.", SPOTS, 1),
    ("The correct answer is **'garage'**, not 'toolbox'.", SPOTS, 1),
    ("**Answer:** *cupboard*\n\n**Explanation:** Cupboards are dark, unlike a garage.", SPOTS, 2),
    ("Considering it all:\n\n**toolbox**\n\nLet me know if you have other questions!", SPOTS, 3),
    ("**Final Answer:**  \n**'mail box'**", SPOTS, 4),
    (STEPS + "Answer: B (London)", CITIES, 1),
    (STEPS + "\\[\\boxed{D}\\]", CITIES, 3),
    (STEPS + "So London (B) is the correct answer.", CITIES, 1),
    ("Weighing them all, I settle on this one:\n\n(D) toolbox", SPOTS, 3),
    # Identical choices are one answer, reported as the first of them.
    ("The answer is 'halibut'.", ["profane", "halibut", "common", "halibut"], 1),
    # A hedge between choices reads as the one named first (the paper's labels read it so).
    (STEPS + "The answer is A or B.", CITIES, 0),
    ("The most likely answer is **'garage'** or **'toolbox'**.", SPOTS, 1),
    ("**Final Answer:** closet or cupboard", SPOTS, 0),
    ("The answer is **'garage'** or **'toolbox'**.\n\nBoth fit the description.", SPOTS, 1),
    ("Based on this, the correct answer is:\n\n['toolbox', 'garage']", SPOTS, 3),
    # Choices referred to by their place in the list, counted from 1.
    ("The best answer is Choice 3 (or Choice 4, as they are the same).", SPOTS, 2),
    ("So the most fitting option is option 2.", SPOTS, 1),
    ("The answer is choice 9.", SPOTS, None),
    # Answers in a structure, by position, and letters a closing sentence settles on.
    (STEPS + "<answer>B</answer>", CITIES, 1),
    (STEPS + '{"reasoning": "London is in the UK.", "answer": "B"}', CITIES, 1),
    (STEPS + '{"answer": "London"}', CITIES, 1),
    (STEPS + "Selected option: C", CITIES, 2),
    (STEPS + "Choice B: London", CITIES, 1),
    (STEPS + "Option B is correct.", CITIES, 1),
    (STEPS + "Option A is not correct.", CITIES, None),
    (STEPS + "The answer is the second option.", CITIES, 1),
    (STEPS + "The answer is the last choice.", CITIES, 3),
    (STEPS + "Final answer: 2", CITIES, 1),
    (STEPS + "Final answer: 7", CITIES, None),
    ("Final answer: 2", ["1", "2", "3", "4"], 1),  # a choice's text, not its position
    (STEPS + "It's not A, C or D, so it must be B.", CITIES, 1),
    (STEPS + "Based on the above, B.", CITIES, 1),
    (STEPS + "I think it's B: London.", CITIES, 1),
    (STEPS + "I think it's B: Berlin.", CITIES, None),
    (STEPS + "It could be A or B, I am not sure.", CITIES, None),
    (STEPS + "### Conclusion\nThe capital of the United Kingdom is **London**.", CITIES, 1),
    (STEPS + "Considering all the options, London stands out as the correct answer.", CITIES, 1),
    (STEPS + "Response: B", CITIES, 1),
    (STEPS + "Response: I do not know.", CITIES, None),
    (STEPS + "The final answer is London. Paris and Berlin are other capitals.", CITIES, 1),
    (STEPS + "Therefore: London", CITIES, 1),
    # No answer, two different final answers, or something that is not a choice: None.
    ("NONE", CITIES, None),
    ("", CITIES, None),
    (None, CITIES, None),
    ("I can't answer a question like that.", CITIES, None),
    ("The answer is a matter of taste.", CITIES, None),
    ("I'm sorry, but I can't help with that request.", CITIES, None),
    (STEPS + "Answer: F", CITIES, None),
    ("Final answer: A\n\nOn reflection, though:\nFinal answer: C", CITIES, None),
    ("Answer: B. Paris", CITIES, None),
    ("The answer is: **'the Fundamental Theorem of Linear programming.'**", MATH, None),
    ("Final answer: 'Linear algebra.'", MATH, None),
    ("The options are:\n'closet'\n'garage'\n'toolbox'", SPOTS, None),
    ("Some say 'closet'.\n\nBut 'closet' is not right here.", SPOTS, None),
    ("The answer is not obvious from the passage.", SPOTS, None),
    ("Final answer: None of the choices is correct.", SPOTS, None),
    ("It could be 'garage', though 'toolbox' also fits.", SPOTS, None),
    # Cut off by a token limit while weighing the choices: no conclusion yet.
    (
        "Let's look at each choice:\n\n1. **Closet**: dark and rarely opened.\n2. **Garage",
        SPOTS,
        None,
    ),
    ("Let's look at each choice.\n\nA garage is dark and rarely cleaned, so spiders", SPOTS, None),
]


@pytest.mark.parametrize(("reply", "choices", "expected"), CASES)
def test_formats(reply: str | None, choices: list[str], expected: int | None) -> None:
    assert read_choice(reply, choices) == expected, read_answer(reply, choices)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("NONE", "no answer"),
        ("Final answer: F", "outside"),
        ("Answer: 'Rome'", "outside"),
        ("Final answer: A\n\nOn reflection, though:\nFinal answer: C", "ambiguous"),
        ("Nothing to see here.", "no answer"),
    ],
)
def test_reasons(reply: str, reason: str) -> None:
    reading = read_answer(reply, CITIES)
    assert reading.index is None and reading.reason == reason, reading


def test_reading_when_found() -> None:
    assert read_answer(STEPS + "Answer: C", CITIES) == Reading(2, "", "letter")
    assert read_answer("C", CITIES) == Reading(2, "", "bare")
    assert read_answer("The answer is 'Berlin'.", CITIES).how == "text"


# Choice texts as benchmarks write them, with words that trip naive readers ("or", "not", "a").
_WORD = st.one_of(
    st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=8),
    st.sampled_from(["or", "and", "not", "a", "I", "the", "is", "answer", "none", "it's", "no"]),
)
_CHOICE = st.builds(
    lambda words, period, cap: (
        (" ".join(words).capitalize() if cap else " ".join(words)) + ("." if period else "")
    ),
    st.lists(_WORD, min_size=1, max_size=6),
    st.booleans(),
    st.booleans(),
)


def _key(text: str) -> str:
    return " ".join(text.lower().rstrip(".").split())


@st.composite
def _question(draw: st.DrawFn) -> tuple[list[str], int]:
    choices = draw(st.lists(_CHOICE, min_size=2, max_size=10, unique_by=_key))
    # A choice that is a single letter is indistinguishable from that letter's label.
    assume(all(len(_key(c)) > 1 for c in choices))
    return choices, draw(st.integers(0, len(choices) - 1))


@st.composite
def _nested(draw: st.DrawFn) -> tuple[list[str], int]:
    """Choices that contain one another, like "Irish." and "The Irish speak Irish."."""
    base = " ".join(draw(st.lists(st.text(string.ascii_lowercase, min_size=2), min_size=1)))
    more = draw(st.text(string.ascii_lowercase, min_size=2, max_size=8))
    choices = [base + ".", f"{more} {base}.", f"{base} {more}.", f"the {more} {base} {more}."]
    assume(len({_key(c) for c in choices}) == len(choices))
    choices = draw(st.permutations(choices))
    return choices, draw(st.integers(0, len(choices) - 1))


def _reasoning(choices: list[str], k: int) -> str:
    lines = ["Let's think step by step."]
    for i, c in enumerate(choices):
        if i != k:
            lines.append(f"- '{c}' ({string.ascii_uppercase[i]}) does not fit the passage.")
    lines.append(f"The answer is not {string.ascii_uppercase[(k + 1) % len(choices)]}.")
    return "\n".join(lines)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_question(), st.sampled_from(["Answer: {}", "**Answer: {}**", "The answer is ({})."]))
def test_letter_after_reasoning(question: tuple[list[str], int], form: str) -> None:
    choices, k = question
    reply = f"{_reasoning(choices, k)}\n\n{form.format(string.ascii_uppercase[k])}"
    assert read_choice(reply, choices) == k


_TEXT_FORMS = ["'{}'", '"{}"', "**'{}'**", "**{}**", "{}", "\n\n['{}']"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_question(), _nested()), st.sampled_from(_TEXT_FORMS))
def test_text_after_reasoning(question: tuple[list[str], int], form: str) -> None:
    choices, k = question
    reply = f"{_reasoning(choices, k)}\n\nTherefore, the final answer is: {form.format(choices[k])}"
    assert read_choice(reply, choices) == k


_PIECES = [*"AbC()*'\"[]\n .:,-", "answer", "Answer: ", "final answer is", " or ", "not ", "none"]


@settings(max_examples=500)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=400),
        st.lists(st.sampled_from([*_PIECES, "\\boxed{", "}", "$"]), max_size=60).map("".join),
    ),
    st.lists(st.text(max_size=30), max_size=8),
)
def test_never_raises(reply: str | None, choices: list[str]) -> None:
    reading = read_answer(reply, choices)
    assert reading.index is None or 0 <= reading.index < len(choices)
    assert (reading.reason == "") == (reading.index is not None)
    assert reading.reason in {"", "no answer", "ambiguous", "outside"}


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(_WORD, st.sampled_from(["B", "A.", "(C)", "final", "**", "\n"])), max_size=12
    ),
    st.sampled_from(["Answer: B", "**Answer:** C", "answer: (a)", "Answer: D.", "Answer:B"]),
    st.lists(st.one_of(_CHOICE, st.sampled_from(["B", "b", "C."])), min_size=2, max_size=5),
)
def test_the_quick_path_reads_as_the_general_reader(
    words: list[str], last: str, choices: list[str]
) -> None:
    # The common "... \nAnswer: X" reply skips the general machinery; it must not change a reading.
    text = " ".join(words) + "\n" + last
    quick = answers._quick(text, answers._choices(tuple(choices)))
    if quick is not None:
        assert quick.index == answers._general(text, answers._choices(tuple(choices))).index
