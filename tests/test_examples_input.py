"""`cdv evaluate --examples FILE`: answers in any form, one line per malformed row, and the same
treatment of non-examples in cdvkit's JSONL and in the reference's JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cdvkit.data.question import stable_id
from cdvkit.evaluation import (
    ExampleSet,
    ExamplesFileError,
    items_from_examples,
    items_from_reference,
    load_examples_file,
)

ORIGINAL = "What is the capital of France?"
ORIGINAL_CHOICES = ["Paris", "London", "Rome", "Berlin"]
DISTRACTED = "Rome has the Colosseum. What is the capital of France?"
SHUFFLED = ["Rome", "Paris", "London", "Berlin"]  # the answer, Paris, is choice B


def row(**over: Any) -> dict[str, Any]:
    base = {
        "question_id": "france",
        "source": "geo",
        "original_question": ORIGINAL,
        "original_choices": ORIGINAL_CHOICES,
        "original_answer": 0,
        "question": DISTRACTED,
        "choices": SHUFFLED,
        "answer": 1,
        "path": "r.0",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load_error(path: Path) -> ExamplesFileError:
    with pytest.raises(ExamplesFileError) as info:
        load_examples_file(path)
    return info.value


# --- answers as index, letter or text ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [1, "1", "B", "b", "(B)", " (b) ", "Paris", " Paris ", "paris", "PARIS "]
)
def test_an_answer_is_an_index_a_letter_or_the_choice_text(tmp_path, answer):
    path = write_jsonl(tmp_path / "ex.jsonl", [row(answer=answer, original_answer="Paris")])
    (item,) = load_examples_file(path).items
    assert item.examples[0].answer == 1 and item.original.answer == 0


@pytest.mark.parametrize(
    ("choices", "answer", "expected"),
    [
        (["B", "A"], "A", 1),  # a choice that is itself a letter wins over the letter
        (["3", "2", "1"], "1", 2),  # and one that is a number over the index
        (["a", "b", "c"], "B", 1),  # letter and case-folded text agree
        (["yes", "no"], "NO", 1),
    ],
)
def test_choice_text_comes_before_letters_and_indices(tmp_path, choices, answer, expected):
    path = write_jsonl(tmp_path / "ex.jsonl", [row(choices=choices, answer=answer)])
    assert load_examples_file(path).items[0].examples[0].answer == expected


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"answer": "Madrid"}, "answer 'Madrid' is not one of its 4 choices"),
        ({"answer": 4}, "answer 4 is out of range for its 4 choices (0-3)"),
        ({"answer": -1}, "answer -1 is out of range"),
        ({"answer": "7"}, "as an index it is out of range (0-3)"),
        ({"answer": "E"}, "as a letter it is out of range (A-D)"),
        ({"answer": True}, "answer must be a choice's index, letter or text, got JSON true"),
        ({"answer": [1]}, "got a JSON list"),
        ({"answer": ...}, "answer is missing"),
        ({"answer": " "}, "answer is empty"),
        ({"original_answer": "Lyon"}, "original_answer 'Lyon' is not one of its 4 choices"),
        ({"choices": ["d", "c", "b", "a"], "answer": "A"}, "is ambiguous"),
        ({"choices": ["Yes", "YES"], "answer": "yes"}, "is ambiguous"),
        ({"choices": ["x", "x"], "answer": "x"}, "is ambiguous"),
        ({"choices": []}, "choices is empty"),
        ({"choices": "Rome, Paris"}, "choices must be a list of texts"),
        ({"choices": ["Rome", None]}, "choices[1] must be text, got JSON null"),
        ({"choices": ["Rome", 2]}, "choices[1] must be text, got the number 2"),
        ({"original_choices": ...}, "original_choices is missing"),
        ({"question": ""}, "question is empty"),
        ({"original_question": 3}, "original_question must be text"),
        ({"question": "\ud800?"}, "lone surrogate"),
        ({"question_id": {"a": 1}}, "question_id must be text"),
        ({"target": ["x"]}, "target must be text"),
    ],
)
def test_a_malformed_row_is_one_line_naming_file_and_row(tmp_path, over, message):
    path = write_jsonl(tmp_path / "found.jsonl", [row(), row(**over)])
    exc = load_error(path)
    assert isinstance(exc, ValueError)
    lines = str(exc).splitlines()
    assert lines[0] == f"{path}: 1 malformed row"
    assert len(lines) == 2 and lines[1].startswith(f"{path} row 2: ")
    assert message in lines[1]
    assert exc.problems == [lines[1].removeprefix(f"{path} ")]


def test_every_malformed_row_is_reported_and_the_list_is_capped(tmp_path):
    rows: list[Any] = [row(answer="Madrid")] * 25
    rows[3] = row()
    path = tmp_path / "found.jsonl"
    # Blank lines and a broken line still count as lines.
    path.write_text(
        "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n{not json\n"
        + "\n".join(json.dumps(r) for r in rows[2:]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    exc = load_error(path)
    lines = str(exc).splitlines()
    assert lines[0] == f"{path}: 25 malformed rows"
    assert len(exc.problems) == 25 and len(lines) == 1 + 20 + 1
    assert lines[-1] == "... and 5 more"
    numbers = [int(re.match(r"row (\d+):", p).group(1)) for p in exc.problems]
    assert numbers == [1, 2, 4, *range(5, 6), *range(7, 28)]
    assert "row 4: not valid JSON" in exc.problems[2]


def test_a_json_list_of_rows_is_numbered_by_entry(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([row(), "oops", row(answer="Madrid")]), encoding="utf-8")
    exc = load_error(path)
    assert exc.problems == [
        "row 2: is not a JSON object but the text 'oops'",
        "row 3: answer 'Madrid' is not one of its 4 choices",
    ]
    path.write_text(json.dumps([row(), row(answer="b", path="r.1")]), encoding="utf-8")
    es = load_examples_file(path)
    assert es.kind == "jsonl" and len(es.items[0].examples) == 2


def test_question_id_is_optional_and_examples_of_one_original_group_together(tmp_path):
    rows = [
        row(question_id=..., path="r.0"),
        row(question_id=..., path="r.1", question="Berlin is big. " + ORIGINAL),
        row(question_id=..., source=..., original_question="What is 2 + 2?",
            original_choices=["3", "4"], original_answer="4", choices=["4", "3"], answer="4"),
    ]  # fmt: skip
    es = load_examples_file(write_jsonl(tmp_path / "ex.jsonl", rows))
    assert [i.id for i in es.items] == [
        stable_id("geo", ORIGINAL, ORIGINAL_CHOICES),
        stable_id("", "What is 2 + 2?", ["3", "4"]),
    ]
    assert [len(i.examples) for i in es.items] == [2, 1]
    assert es.items[1].examples[0].answer == 0
    # One question_id for two different originals is a data error, not a silent merge.
    clash = [row(), row(original_question="What is the capital of Italy?")]
    exc = load_error(write_jsonl(tmp_path / "clash.jsonl", clash))
    assert exc.problems == ["row 2: question_id 'france' names another original question in row 1"]


def test_items_from_examples_names_bad_rows_instead_of_a_key_error():
    with pytest.raises(ExamplesFileError, match=r"row 2: answer is missing"):
        items_from_examples([row(), row(answer=...)])


# --- skipped examples: the same in both formats --------------------------------------------------


def test_identical_to_original_examples_are_skipped_and_counted(tmp_path):
    rows = [
        row(question=" What is the capital of  France?\n"),  # whitespace only: no distraction
        row(path="r.1"),
        row(question_id="q2", original_question="Is the sky blue?", original_choices=["yes", "no"],
            original_answer=0, question="Is the sky blue?", choices=["no", "yes"], answer="yes"),
    ]  # fmt: skip
    es = load_examples_file(write_jsonl(tmp_path / "ex.jsonl", rows))
    assert [i.id for i in es.items] == ["france"] and len(es.items[0].examples) == 1
    assert es.skipped == [
        "row 1: identical to its original question (no distraction)",
        "row 3: no CDV example, question skipped: its only example is identical to its "
        "original question (no distraction)",
    ]
    assert es.describe()["skipped"] == 2 and es.describe()["examples"] == 1


def _same_data_in_both_formats() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Questions with: two real examples; one real and one identical example; only identical
    examples; only the reference's "original already failed" marker."""
    spec = [
        ("q1", "Which planet is red?", ["Mars", "Venus"], "Mars",
         ["Venus is bright. Which planet is red?", "Which planet is red? Venus glows."]),
        ("q2", "What is 2 + 2?", ["3", "4", "5"], "4",
         ["Five is odd. What is 2 + 2?", "What is 2 + 2? "]),
        ("q3", "Which is a fruit?", ["apple", "stone"], "apple",
         ["Which  is a fruit?", " Which is a fruit?"]),
        ("q4", "What color is snow?", ["white", "blue"], "white", ["What color is snow?"]),
    ]  # fmt: skip
    jsonl, reference = [], []
    for qid, question, choices, answer, examples in spec:
        flipped = list(reversed(choices))
        goods = []
        for k, text in enumerate(examples):
            jsonl.append(
                {
                    "question_id": qid,
                    "original_question": question,
                    "original_choices": choices,
                    "original_answer": choices.index(answer),
                    "question": text,
                    "choices": flipped,
                    "answer": flipped.index(answer),
                    "path": f"r.{k}",
                    "target": "gpt-4o-mini",
                }
            )
            goods.append({"question": text, "choices": flipped, "ground_truth": answer})
        reference.append(
            {"id": qid, "question": question, "choices": choices, "answer": answer,
             "good_questions": goods}
        )  # fmt: skip
    return jsonl, reference


def test_both_readers_agree_on_the_same_data(tmp_path):
    rows, entries = _same_data_in_both_formats()
    jsonl = load_examples_file(write_jsonl(tmp_path / "ex.jsonl", rows))
    ref_path = tmp_path / "enhanced" / "gpt-4o-mini" / "Quiz_enhanced.json"
    ref_path.parent.mkdir(parents=True)
    ref_path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    ref = load_examples_file(ref_path)
    assert (jsonl.kind, ref.kind) == ("jsonl", "reference")
    assert jsonl.label == ref.label == "gpt-4o-mini"

    def counts(es: ExampleSet) -> tuple[int, int, int]:
        d = es.describe()
        return d["questions"], d["examples"], d["skipped"]

    assert counts(jsonl) == counts(ref) == (2, 3, 3)
    for a, b in zip(jsonl.items, ref.items, strict=True):
        assert (a.id, a.original) == (b.id, b.original)
        assert [(v.question, v.choices, v.answer) for v in a.examples] == [
            (v.question, v.choices, v.answer) for v in b.examples
        ]

    # The same reasons, row numbers aside (a JSONL row is an example, a reference row a question).
    def reasons(es: ExampleSet) -> list[str]:
        return sorted(line.split(": ", 1)[1] for line in es.skipped)

    assert reasons(jsonl) == reasons(ref)
    assert ref.skipped == [
        "row 2, good_questions[1]: identical to its original question (no distraction)",
        "row 3: no CDV example, question skipped: its 2 examples are identical to its original "
        "question (no distraction)",
        "row 4: no CDV example, question skipped: its only example is identical to its original "
        "question (no distraction)",
    ]


def test_the_reference_keeps_skipping_non_examples_but_refuses_malformed_entries(tmp_path):
    good = {
        "question": "Q?",
        "choices": ["a", "b"],
        "answer": "a",
        "good_questions": [{"question": "Hm. Q?", "choices": ["b", "a"], "ground_truth": "a"}],
    }
    entries = [
        good,
        {"question": "Not reached?", "choices": ["a", "b"], "answer": "b"},
        {"question": "Nothing found?", "choices": ["a", "b"], "answer": "b", "good_questions": []},
    ]  # fmt: skip
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    es = load_examples_file(path)
    assert len(es.items) == 1 and es.items[0].examples[0].answer == 1
    assert es.skipped == [
        "row 2: not searched (no good_questions)",
        "row 3: no CDV example (good_questions is empty)",
    ]
    bad = [
        *entries,
        {**good, "answer": "maybe"},
        {**good, "good_questions": [{"question": "Hm. Q?", "ground_truth": "Pluto"}]},
        {**good, "good_questions": "none"},
        {**good, "good_questions": [{"choices": ["a", "b"]}]},
        7,
    ]
    path.write_text(json.dumps(bad), encoding="utf-8")
    exc = load_error(path)
    assert exc.problems == [
        "row 4: answer 'maybe' is not one of its 2 choices",
        "row 5: good_questions[0].ground_truth 'Pluto' is not one of its 2 choices",
        "row 6: good_questions must be a list, got the text 'none'",
        "row 7: good_questions[0].question is missing",
        "row 8: is not a JSON object but the number 7",
    ]
    # Called directly, the reader lists malformed entries with the skipped ones.
    items, skipped = items_from_reference(bad)
    assert len(items) == 1 and len(skipped) == 2 + 5 and skipped[0].startswith("row 4: ")


def test_files_that_are_neither_format_or_not_text(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{\n  "question": "Q?"\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="holds a JSON object, not one JSON object per line"):
        load_examples_file(path)
    path.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(ValueError, match=r"line 1 is not UTF-8 text"):
        load_examples_file(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="neither"):
        load_examples_file(path)


def test_cli_prints_one_line_per_malformed_row(tmp_path, monkeypatch):
    from cdvkit.cli.app import app

    path = write_jsonl(tmp_path / "bad.jsonl", [row(), row(answer="Madrid"), row(question_id=[])])
    res = CliRunner().invoke(
        app,
        ["evaluate", "--examples", str(path), "--models", "embed/all-MiniLM-L6-v2",
         "--out", str(tmp_path / "eval")],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    flat = res.output
    assert f"{path}: 2 malformed rows" in flat
    assert f"{path} row 2: answer 'Madrid' is not one of its 4 choices" in flat
    assert f"{path} row 3: question_id must be text, got a JSON list" in flat
    # Nothing is written when loading fails: neither --out nor the default results folder.
    assert not (tmp_path / "eval").exists()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app, ["evaluate", "--examples", str(path), "--models", "embed/all-MiniLM-L6-v2"]
    )
    assert res.exit_code == 2 and not (tmp_path / "runs").exists()


# --- property-based: no row content escapes as anything but one line about its row ---------------

_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(['"', "\\", "{", "}", "\x00", "\n", "\u2028", "\ud800", "\udc80"]),
)
_text = st.text(_chars, max_size=8)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 30), st.floats(allow_nan=True), _text,
    st.integers(min_value=10**30, max_value=10**40),
)  # fmt: skip
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_answers = st.one_of(
    st.integers(-1, 5),
    st.sampled_from(["A", "b", "(C)", "Paris", " paris ", "PARIS", "2", "9", "Z", "", "Rome"]),
    _json,
)
_choice_lists = st.one_of(
    st.sampled_from([ORIGINAL_CHOICES, SHUFFLED, ["paris", "Paris"], ["a"], []]),
    st.lists(st.one_of(_text, st.sampled_from(["Paris", "Rome"]), _json), max_size=5),
    _json,
)
_questions = st.one_of(st.sampled_from([ORIGINAL, DISTRACTED, f" {ORIGINAL} "]), _text, _json)
_DROP = object()  # a field left out of the row


@st.composite
def _mutated(draw: Any, valid: st.SearchStrategy, fields: dict[str, st.SearchStrategy]) -> Any:
    """A valid row with up to three fields replaced by random values or left out."""
    out = dict(draw(valid))
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        value = draw(st.one_of(st.just(_DROP), fields[key]))
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_valid_example = st.builds(
    row,
    question_id=st.sampled_from(["q1", "q2", ...]),
    question=st.sampled_from([DISTRACTED, ORIGINAL, f" {ORIGINAL}\n", "Berlin? " + ORIGINAL]),
    answer=st.sampled_from([1, "1", "B", "(b)", "Paris", " paris "]),
    original_answer=st.sampled_from([0, "A", "Paris"]),
    path=st.sampled_from(["r.0", "r.1", ...]),
)
_example_row = _mutated(
    _valid_example,
    {
        "question_id": _json,
        "source": _json,
        "original_question": _questions,
        "original_choices": _choice_lists,
        "original_answer": _answers,
        "question": _questions,
        "choices": _choice_lists,
        "answer": _answers,
        "path": _json,
        "target": _json,
    },
)
_valid_good = st.fixed_dictionaries(
    {
        "question": st.sampled_from([DISTRACTED, ORIGINAL, "Berlin? " + ORIGINAL]),
        "choices": st.just(SHUFFLED),
        "ground_truth": st.sampled_from(["Paris", 1, "B"]),
    }
)
_good = _mutated(
    _valid_good, {"question": _questions, "choices": _choice_lists, "ground_truth": _answers}
)
_valid_entry = st.fixed_dictionaries(
    {
        "question": st.just(ORIGINAL),
        "choices": st.just(ORIGINAL_CHOICES),
        "answer": st.sampled_from(["Paris", 0, "a"]),
        "good_questions": st.lists(st.one_of(_good, _good, _json), max_size=3),
    },
    optional={"id": st.sampled_from(["q1", "q2"]), "source": st.just("geo")},
)
_reference_entry = _mutated(
    _valid_entry,
    {
        "id": _json,
        "source": _json,
        "question": _questions,
        "choices": _choice_lists,
        "answer": _answers,
        "good_questions": _json,
    },
)
_file_rows = st.one_of(
    st.lists(st.one_of(_example_row, _example_row, _json), min_size=1, max_size=6),
    st.lists(st.one_of(_reference_entry, _reference_entry, _json), min_size=1, max_size=6),
)


def _check(es: ExampleSet, n_rows: int) -> None:
    assert sum(len(i.examples) for i in es.items) <= n_rows
    for item in es.items:
        assert item.examples
        for v in (item.original, *item.examples):
            assert isinstance(v.question, str) and v.question.strip()
            assert v.choices and all(isinstance(c, str) and c.strip() for c in v.choices)
            assert 0 <= v.answer < len(v.choices)
            json.dumps(v.to_dict(), ensure_ascii=False).encode("utf-8")  # valid Unicode
        for v in item.examples:
            assert " ".join(v.question.split()) != " ".join(item.original.question.split())
    assert all("\n" not in line for line in es.skipped)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_file_rows, as_list=st.booleans())
def test_random_rows_load_or_fail_with_one_line_per_row(tmp_path_factory, rows, as_list):
    path = tmp_path_factory.mktemp("ex") / ("rows.json" if as_list else "rows.jsonl")
    if as_list:
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        write_jsonl(path, rows)
    try:
        es = load_examples_file(path)
    except ExamplesFileError as exc:
        lines = str(exc).splitlines()
        n = len(exc.problems)
        assert n >= 1 and lines[0] == f"{path}: {n} malformed row{'' if n == 1 else 's'}"
        numbers = []
        for problem, line in zip(exc.problems, lines[1:], strict=False):
            assert line == f"{path} {problem}" and "\n" not in problem
            numbers.append(int(re.match(r"row (\d+): ", problem).group(1)))
        assert numbers == sorted(set(numbers)) and set(numbers) <= set(range(1, len(rows) + 1))
        return
    except ValueError as exc:
        # Only the whole file may be refused otherwise: neither format.
        assert "neither" in str(exc), exc
        return
    _check(es, len(rows) * 3)
