"""A task shape added from outside cdvkit (here, from this test module only) runs through
`cdv generate`, `cdv evaluate` and `cdv export` with nothing else changed: one class, registered.

The shape, ``year``, answers history questions with a year. It brings its own target and
extractor templates, reader, right/wrong rule, leak check and near misses, and uses the shared
free-form templates for every other role.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import NO_CHOICE, Question
from cdvkit.data.validation import InvalidRow, answer_text
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts.defaults import DEFAULTS
from cdvkit.prompts.spec import Template
from cdvkit.store import RunStore
from cdvkit.tasks import SHAPES, FreeReading, TaskShape, load_file, shape_of
from freeform_helpers import free_oracle, free_proposer
from scripted_helpers import MARK

runner = CliRunner()
SYSTEMS: set[str] = set()  # the system prompts the target was asked with
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")


class Year(TaskShape):
    name = "year"
    description = "a year (history questions)"
    answer_noun = "year"
    wrong_kind = "years"
    templates: ClassVar[dict[str, Template]] = {
        "target": Template(
            "You answer history questions. Think it through, then end with 'Answer: YYYY'.",
            "{question}",
        ),
        "extractor": Template(
            "You read the year a reply gives as its answer.",
            "Question:\n{question}\n\nReply:\n{reply}\n\nWhich year? Reply with it alone.",
            temperature=0.0,
            max_tokens=8,
        ),
    }
    example: ClassVar[dict[str, Any]] = {
        "question": "In which year did Apollo 11 land on the Moon?",
        "answer": "1969",
    }

    def reference(self, answer: Any) -> tuple[str, dict[str, Any]]:
        text = answer_text(answer)
        if not _YEAR.fullmatch(text):
            raise InvalidRow(f"answer {text!r} is not a year")
        return text, {}

    def read(self, reply: str | None) -> FreeReading:
        marked = re.findall(r"Answer:\s*(\d{4})", reply or "")
        years = marked or _YEAR.findall(reply or "")
        return FreeReading(years[-1], "") if years else FreeReading(None, "no answer")

    def is_right(self, answer: str | None, references: tuple[str, ...]) -> bool:
        return answer is not None and answer.strip() in references

    def leaks(self, distraction: str, question: Question) -> bool:
        year = question.answer_text
        return year in distraction and year not in question.question

    def near_misses(self, reference: str) -> list[str]:
        return [str(int(reference) + d) for d in (1, -1, 10)]


ROWS = [
    ("apollo", "In which year did Apollo 11 land on the Moon?", "1969"),
    ("wall", "In which year did the Berlin Wall fall?", "1989"),
    ("magna", "In which year was Magna Carta sealed?", "1215"),
]


@pytest.fixture
def year_shape():
    SHAPES.add("year", Year, help=Year.description)
    yield shape_of("year")
    SHAPES.remove("year")
    for name in ("target.year", "extractor.year"):
        DEFAULTS.pop(name, None)


@pytest.fixture
def history(tmp_path: Path, year_shape) -> tuple[Path, list[Question]]:
    data = tmp_path / "history.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a in ROWS)
    )
    questions = [Question(i, q, (), NO_CHOICE, task="year", references=(a,)) for i, q, a in ROWS]
    oracle = free_oracle(questions)  # fooled by one marked year

    def seen(req: Any, sample: int) -> str:
        SYSTEMS.add(req.messages[0][1])
        return oracle(req, sample)

    SYSTEMS.clear()
    REGISTRY["year-oracle"] = seen
    REGISTRY["year-robust"] = free_oracle(questions, fooled_at=99)
    REGISTRY["year-prop"] = free_proposer
    return data, questions


def test_the_plugin_shape_loads_validates_and_is_listed(history, tmp_path: Path) -> None:
    data, _ = history
    loaded = load_file(data, task="year").questions
    assert [q.task for q in loaded] == ["year"] * 3 and loaded[0].references == ("1969",)
    # Left to infer, the same rows read as numbers: a plugin shape is chosen with --task.
    assert {q.task for q in load_file(data).questions} == {"numeric"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "When?", "answer": "long ago"}) + "\n")
    res = runner.invoke(
        app,
        ["generate", "--data", str(bad), "--task", "year", "--target", "scripted/year-oracle",
         "--run-dir", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 2 and "answer 'long ago' is not a year" in res.output
    listed = runner.invoke(app, ["parts", "--json"])
    assert listed.exit_code == 0
    shapes = {p["name"] for p in json.loads(listed.stdout) if p["kind"] == "task shape"}
    assert shapes == {"multiple_choice", "numeric", "short_answer", "year"}


def test_generate_and_evaluate_run_a_shape_defined_in_a_test_module(history, tmp_path: Path):
    data, _ = history
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--task", "year", "--target", "scripted/year-oracle",
         "--proposer", "scripted/year-prop", "--similarity-floor", "0", "--samples", "2",
         "--run-dir", str(run), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["with_example"] == 3
    with RunStore(run, readonly=True, lock=False) as store:
        examples = list(store.examples())
        good = store.nodes(status="good")
    # Every example fools the target with a year the proposer pushed, never the answer itself,
    # and the shape's reader read each of the target's answers to it as that wrong year.
    for e in examples:
        pushed = re.findall(rf"{MARK} (\d{{4}})", e["question"])
        assert pushed and e["answer_text"] not in pushed and e["task"] == "year"
    assert len(good) >= 3
    for n in good:
        pushed = re.findall(rf"{MARK} (\d{{4}})", n["question"])[-1]
        answers = n["outputs"]["verify"]["answers"]
        assert answers and all(a["answer"] == pushed and not a["correct"] for a in answers)
    # The shape's own target template asked the target (its wording, not the numeric one's).
    assert {Year.templates["target"].system} == SYSTEMS

    ev = runner.invoke(
        app,
        ["evaluate", "--run", str(run), "--models", "scripted/year-oracle", "scripted/year-robust",
         "--bootstrap", "100", "--json"],
    )  # fmt: skip
    assert ev.exit_code == 0, ev.output
    entry = json.loads(ev.stdout)["evaluations"][0]
    (per_model,) = entry["results"].values()
    fooled, robust = per_model["scripted/year-oracle"], per_model["scripted/year-robust"]
    assert (fooled["overall"]["original"], fooled["overall"]["distracted"]) == (1.0, 0.0)
    assert (robust["overall"]["original"], robust["overall"]["distracted"]) == (1.0, 1.0)
    assert "each read as a year" in entry["settings"]["protocol"]

    # lm-eval's own conventions for a shape that brings none: the base generate_until task.
    out = tmp_path / "lm"
    ex = runner.invoke(
        app, ["export", str(run), "--format", "lm-eval", "--lm-eval-mode", "loglik", "-o", str(out)]
    )
    assert ex.exit_code == 0, ex.output
    docs = [
        json.loads(line) for line in next(out.glob("*_distracted.jsonl")).read_text().splitlines()
    ]
    assert {d["task"] for d in docs} == {"year"} and len(docs) == 3


def test_a_run_of_a_shape_whose_plugin_is_gone_says_so(history, tmp_path: Path) -> None:
    data, _ = history
    run = tmp_path / "run"
    args = ["--data", str(data), "--task", "year", "--target", "scripted/year-oracle",
            "--proposer", "scripted/year-prop", "--similarity-floor", "0",
            "--run-dir", str(run)]  # fmt: skip
    assert runner.invoke(app, ["generate", *args]).exit_code == 0
    SHAPES.remove("year")
    # Reading the run needs no shape; asking its questions again does, and says which.
    assert runner.invoke(app, ["show", str(run)]).exit_code == 0
    ev = runner.invoke(app, ["evaluate", "--run", str(run), "--models", "scripted/year-oracle"])
    assert ev.exit_code == 2 and "'year' is not a registered task shape" in ev.output
    assert "Traceback" not in ev.output
    again = runner.invoke(app, ["generate", *args])
    assert again.exit_code == 2 and "not 'year'" in again.output


def test_a_shape_that_cannot_work_is_refused_when_registered() -> None:
    from cdvkit.registry import PartError

    class Unread(TaskShape):  # free form, but reads nothing
        name, description = "unread", "x"
        example: ClassVar[dict[str, Any]] = {"question": "Q?", "answer": "A"}

    class NoExample(Year):
        name = "no-example"
        example: ClassVar[dict[str, Any]] = {}

    with pytest.raises(PartError, match="needs its own read"):
        SHAPES.add("unread", Unread)
    with pytest.raises(PartError, match="no example row"):
        SHAPES.add("no-example", NoExample)
    with pytest.raises(PartError, match="calls itself 'year'"):
        SHAPES.add("other-name", Year)
    assert "unread" not in SHAPES and "no-example" not in SHAPES
