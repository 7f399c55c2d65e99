"""cdvkit's default template of every role and task shape (one table, in our own words).

Task shapes add their own (``target.numeric``...) when they are registered (cdvkit.tasks).

The ``paper`` variants follow the reference implementation's procedure (what each role is shown,
in which layout, and how it answers); its exact wording belongs in a prompts file a user writes.
The simulated server (bench/_fakeserver.py) tells roles apart by the default system texts.
"""

from __future__ import annotations

from cdvkit.prompts.spec import ReplySpec, Template

_TARGET_SYSTEM = (
    "You answer multiple-choice questions. Think step by step, then finish with a final line of "
    "the form 'Answer: X' where X is the letter of exactly one of the given choices."
)
_RESPONSE = "Here is a response to this question:\n<<<\n{reply}\n>>>\n\n"
# The reference's exchanges all open with a generic assistant system message; its instructions
# sit in the user message.
PLAIN_SYSTEM = "You are a helpful assistant."


def free_target(kind: str, final: str) -> Template:
    """A free-form shape's target template: it answers ``kind`` and ends with ``final``."""
    return Template(
        f"You answer {kind}. Think step by step, then finish with {final}.",
        # No prefix: the shape's reader finds the answer anywhere (a marker, "#### N", the
        # last number), which reads more real replies than the asked-for line alone.
        "{question}",
    )


def free_extractor(what: str) -> Template:
    """A free-form shape's extractor template: it reads out ``what`` ("number")."""
    return Template(
        "You read the final answer out of free-text replies.",
        "Question:\n{question}\n\n" + _RESPONSE + "What final answer does the response give? "
        f"Reply with the {what} only, or NONE if it gives no single final answer.",
        temperature=0.0,
        max_tokens=20,
    )


DEFAULTS: dict[str, Template] = {
    # --- the target ---------------------------------------------------------------------
    "target.letter": Template(
        # No prefix: cdvkit's reader finds the final answer anywhere in the reply.
        _TARGET_SYSTEM,
        "{question}\n\n{choices_lettered}",
    ),
    # The paper's layout: the choices as a list, answered by their text, step by step; no
    # final-answer line is asked for (its extractor reads every reply).
    "target.paper": Template(
        PLAIN_SYSTEM,
        "Read the question below and answer it by picking one of the listed choices; your final "
        "answer has to be one of them. Reason through it step by step.\n\n"
        "Question:\n{question}\n\nChoices:\n{choices_list}\n",
        ReplySpec(answer="text"),
    ),
    # --- the extractor ------------------------------------------------------------------
    "extractor.letter": Template(
        "You map free-text answers to answer options.",
        "{question}\n\n{choices_lettered}\n\n" + _RESPONSE + "Which choice does the response "
        "give as its final answer? Reply with the single letter only, or NONE if it gives none "
        "of the choices.",
        ReplySpec(answer="letter"),
        temperature=0.0,
        max_tokens=5,
    ),
    "extractor.paper": Template(
        PLAIN_SYSTEM,
        "A model answered the question below. Say which of the listed choices it settled on as "
        "its final answer.\n\nQuestion:\n{question}\n\nThe model's reply:\n{reply}\n\n"
        "Choices:\n{choices_list}\n\n"
        'Reply with JSON only: {{"final_answer": "<that choice, copied exactly from the list>"}}',
        ReplySpec(format="json", key="final_answer", answer="text"),
        temperature=0.0001,
        max_tokens=256,
    ),
    # --- the proposer -------------------------------------------------------------------
    "proposer.one": Template(
        "You help build a benchmark of contextual distraction. Given a multiple-choice question, "
        "its correct answer and one wrong option, you write ONE sentence of coherent but "
        "irrelevant context that could naturally accompany the question and subtly makes the "
        "wrong option seem plausible. The sentence must not state or hint which option is "
        "correct or incorrect, must not mention option letters, must not contradict the correct "
        "answer, and must not change what the correct answer to the question is. Reply with the "
        "sentence only.",
        "Question and choices:\n{question}\n\n{choices_lettered}\n\nCorrect answer: {answer}\n"
        "Wrong option to make plausible: {wrong}\n\nWrite the one sentence of distracting "
        "context.",
        max_tokens=120,
    ),
    "proposer.batch": Template(
        "You help build a benchmark of contextual distraction. Given a multiple-choice question, "
        "its correct answer and its wrong options, you write, for EACH wrong option, ONE "
        "sentence of coherent but irrelevant context that could naturally accompany the question "
        "and subtly makes that wrong option seem plausible. No sentence may state or hint which "
        "option is correct or incorrect, mention option letters, contradict the correct answer, "
        "or change what the correct answer to the question is. Reply with JSON only: an object "
        "whose keys are the wrong options' letters and whose values are the sentences, e.g. "
        '{{"B": "...", "D": "..."}}.',
        "Question and choices:\n{question}\n\n{choices_lettered}\n\nCorrect answer: {answer}\n"
        "Wrong options to make plausible:\n{wrongs}\n\n"
        "Write one sentence of distracting context for each wrong option, as JSON.",
        ReplySpec(format="json"),
    ),
    # The paper's proposer sees only the node's question and one wrong option (no choices, no
    # correct answer) and writes its sentence after a fixed label.
    "proposer.paper": Template(
        PLAIN_SYSTEM,
        "Below is a question and an alternative answer to it. Write a single sentence of extra "
        "context that fits the question naturally and quietly makes the alternative answer seem "
        "reasonable. Do not call any answer right or wrong, do not contradict the question's "
        "real answer, and keep the hint indirect rather than naming the alternative outright.\n\n"
        "Question:\n{question}\n\nAlternative answer:\n{wrong}\n\n"
        "Give the sentence on one line that starts with 'Distraction:'.",
        ReplySpec(prefix="Distraction:"),
        max_tokens=256,
    ),
    "proposer.free": Template(
        "You help build a benchmark of contextual distraction. Given a question, its correct "
        "answer and one wrong answer, you write ONE sentence of coherent but irrelevant context "
        "that could naturally accompany the question and subtly makes the wrong answer seem "
        "plausible. The sentence must not state or hint what the answer is, must not contradict "
        "the correct answer, and must not add, remove or change any quantity or fact the "
        "question needs. Reply with the sentence only.",
        "Question:\n{question}\n\nCorrect answer: {answer}\nWrong answer to make plausible: "
        "{wrong}\n\nWrite the one sentence of distracting context.",
        max_tokens=120,
    ),
    "proposer.free_batch": Template(
        "You help build a benchmark of contextual distraction. Given a question, its correct "
        "answer and numbered wrong answers, you write, for EACH wrong answer, ONE sentence of "
        "coherent but irrelevant context that could naturally accompany the question and subtly "
        "makes that wrong answer seem plausible. No sentence may state or hint what the answer "
        "is, contradict the correct answer, or add, remove or change any quantity or fact the "
        "question needs. Reply with JSON only: an object whose keys are the numbers, e.g. "
        '{{"1": "...", "2": "..."}}.',
        "Question:\n{question}\n\nCorrect answer: {answer}\nWrong answers to make plausible:\n"
        "{wrongs}\n\nWrite one sentence of distracting context for each wrong answer, as JSON.",
        ReplySpec(format="json"),
    ),
    "wrong_answers.free": Template(
        "You help build a benchmark of contextual distraction for free-form questions. Given a "
        "question and its correct answer, you list plausible WRONG final answers a careless "
        "solver might give: for math, near-miss numbers from a common slip (a skipped step, a "
        "wrong operation, a unit mix-up); otherwise confusable entities or facts. Reply with "
        'JSON only: {{"wrong_answers": ["...", "..."]}}',
        "Question:\n{question}\n\nCorrect answer: {answer}\n\n"
        "List {k} distinct plausible wrong {kind}.",
        ReplySpec(format="json", key="wrong_answers"),
        json_mode=True,
    ),
    # --- the judge ----------------------------------------------------------------------
    "judge.standard": Template(
        "You check distracted multiple-choice questions. Extra context was added to an original "
        "question. Decide whether the added context changes which answer is correct for the "
        "ORIGINAL question, or makes it ambiguous. Reply with JSON only: "
        '{{"changes_answer": true|false, "reason": "<one short sentence>"}}',
        "Original question:\n{original}\n\n{choices_lettered}\nCorrect answer: {answer_letter}. "
        "{answer}\n\nQuestion with added context:\n{distracted}\n\n"
        "Does the added context change the correct answer to the original question?",
        ReplySpec(format="json", key="changes_answer", pass_when=False),
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    ),
    # The paper's judge is shown only the two questions (no choices, no answer).
    "judge.paper": Template(
        PLAIN_SYSTEM,
        "Sentences that have nothing to do with the question were added to the original "
        "question below. Work out, step by step, whether they would lead to a different answer "
        "to the original question. Then give your verdict as JSON: "
        '{{"answer_unchanged": "Yes"}} if the answer stays the same, '
        '{{"answer_unchanged": "No"}} if it changes.\n\n'
        "Original question:\n{original}\n\nQuestion with the added sentences:\n{distracted}\n",
        ReplySpec(format="json", key="answer_unchanged", pass_when="yes"),
        temperature=0.0001,
        max_tokens=1024,
    ),
    "judge.free": Template(
        "You check distracted free-form questions. Extra context was added to an original "
        "question. Decide whether the added context changes the correct answer to the ORIGINAL "
        "question, makes it ambiguous, or (for math) adds, removes or changes a quantity the "
        'solution must use. Reply with JSON only: {{"changes_answer": true|false, "reason": '
        '"<one short sentence>"}}',
        "Original question:\n{original}\nCorrect answer: {answer}\n\n"
        "Question with added context:\n{distracted}\n\n"
        "Does the added context change the correct answer to the original question?",
        ReplySpec(format="json", key="changes_answer", pass_when=False),
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    ),
    # --- the grader ---------------------------------------------------------------------
    "grader.free": Template(
        "You grade answers to questions against a reference answer. Decide whether the "
        "response's final answer means the same as the reference answer (aliases and "
        'equivalent forms count). Reply with JSON only: {{"correct": true|false, "reason": '
        '"<one short sentence>"}}',
        "Question:\n{question}\n\nReference answer: {answer}{aliases}\n\nResponse:\n<<<\n"
        "{reply}\n>>>\n\nIs the response's final answer correct?",
        ReplySpec(format="json", key="correct", pass_when=True),
        temperature=0.0,
        max_tokens=120,
        json_mode=True,
    ),
    # --- the paper's two lengthening baselines (one rewrite per question, no search) -----
    "rewrite.paraphrase_long": Template(
        PLAIN_SYSTEM,
        "Rewrite the question below in different words so that it asks exactly the same thing "
        "and has the same answer, but make the new version about ten times as long as the "
        "original.\n\nQuestion:\n{question}\n\nChoices:\n{choices_list}\n\n"
        "Give only the rewritten question, without its choices, after the label "
        "'Rewritten question:'.",
        ReplySpec(prefix="Rewritten question:"),
        max_tokens=2048,
    ),
    "rewrite.background": Template(
        PLAIN_SYSTEM,
        "Make the question below longer without changing what it asks or its answer: put two "
        "or three sentences of related background before it and one or two sentences on a "
        "practical use of the topic after it. Keep the question's own words as they are, keep "
        "its technical terms (you may explain them), and never mention or hint at any answer "
        "option.\n\nQuestion:\n{question}\n\n"
        "Give only the new text, without choices, after the label 'Rewritten question:'.",
        ReplySpec(prefix="Rewritten question:"),
        max_tokens=2048,
    ),
}


def add_templates(templates: dict[str, Template]) -> None:
    """Add a part's own templates (a task shape's ``target.<shape>``...) to the table; a name
    already there with other content is refused, so two parts never share a template."""
    for name, template in templates.items():
        if DEFAULTS.get(name, template) != template:
            raise ValueError(f"the template {name} is already defined otherwise")
        DEFAULTS[name] = template
