"""Bad and hostile input: every defect the loaders reject, and odd rows searched safely.

The corpus in tests/data/bad holds one small file per defect. Each has a documented outcome: the
row is rejected with its file and row number, the whole file is rejected, or the rows load and a
search over them finishes with the text kept verbatim. Property-based tests then feed random rows
to the loader and random replies to the answer and JSON parsers.
"""

from __future__ import annotations

import asyncio
import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cdvkit.answers import read_answer
from cdvkit.cli.app import app
from cdvkit.data import DatasetError, Question
from cdvkit.data.question import LETTERS
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import TARGET_SYSTEM, MalformedJSON, parse_json_object
from cdvkit.search.constraints import LLMJudge
from cdvkit.search.node import Node
from cdvkit.store import RunStore
from cdvkit.tasks import load_file

BAD = Path(__file__).resolve().parent / "data" / "bad"


@dataclass(frozen=True)
class Rejected:
    """The load stops at this row and names it; --skip-invalid skips it and loads the rest."""

    row: int
    says: str


@dataclass(frozen=True)
class FileRejected:
    """The file as a whole is unusable: no row number, and --skip-invalid cannot help."""

    says: str


@dataclass(frozen=True)
class Accepted:
    questions: int
    repaired_rows: tuple[int, ...] = ()  # loaded after a repair, reported as warnings


Outcome = Rejected | FileRejected | Accepted

CASES: list[tuple[str, dict[str, Any], Outcome]] = [
    ("empty_question.jsonl", {}, Rejected(2, "question is empty")),
    ("one_choice.jsonl", {}, Rejected(1, "has 1 choice(s)")),
    ("too_many_choices.jsonl", {}, Rejected(1, "at most 26 (A-Z)")),
    # Whitespace-only differences look the same to a model: collapsed, or refused with --strict.
    ("duplicate_choices.jsonl", {}, Accepted(2, repaired_rows=(2,))),
    ("duplicate_choices.jsonl", {"strict": True}, Rejected(2, "duplicate choices")),
    ("answer_missing.jsonl", {}, Rejected(3, "answer is missing")),
    ("answer_not_in_choices.jsonl", {}, Rejected(1, "'Berlin' is not one of the choices")),
    ("index_out_of_range.jsonl", {}, Rejected(2, "answer index 7 is out of range for 3")),
    ("answer_is_boolean.jsonl", {}, Rejected(1, "answer must be the choice text")),
    ("duplicate_id.jsonl", {}, Rejected(2, "duplicate id 'q1' (already used by row 1)")),
    ("malformed_json_line.jsonl", {}, Rejected(2, "malformed JSON line")),
    # Python will not convert an integer of more than 4300 digits: a row defect, not a crash.
    ("huge_number.jsonl", {}, Rejected(2, "a number too long to read")),
    ("row_not_object.jsonl", {}, Rejected(2, "row is not an object but a JSON list")),
    ("lone_surrogate.jsonl", {}, Rejected(2, "lone surrogate")),
    ("non_utf8.jsonl", {}, Rejected(1, "not valid UTF-8")),
    ("mixed_encodings.jsonl", {}, Rejected(2, "not valid UTF-8")),
    ("wrong_field_count.csv", {}, Rejected(2, "row has 5 fields but the header has 4")),
    ("no_question_column.csv", {}, FileRejected("no 'question' column")),
    ("empty.jsonl", {}, FileRejected("contains no questions")),
    ("not_a_list.json", {}, FileRejected("must be a list of question objects")),
    ("invalid.json", {}, FileRejected("not valid JSON (line 2")),
    # Loaded as data and searched like any other question (see test_odd_rows_are_searched_safely).
    ("control_chars.jsonl", {}, Accepted(2)),
    ("prompt_injection.jsonl", {}, Accepted(2)),
    ("distraction_markers.jsonl", {}, Accepted(2)),
]


def count_rows(path: Path) -> int:
    if path.suffix == ".csv":
        return len(path.read_bytes().splitlines()) - 1
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def test_corpus_has_one_case_per_file() -> None:
    assert {p.name for p in BAD.iterdir() if not p.name.startswith(".")} == {c[0] for c in CASES}


@pytest.mark.parametrize(
    ("name", "options", "outcome"), CASES, ids=[f"{c[0]}{c[1]}" for c in CASES]
)
def test_loader_outcome(name: str, options: dict[str, Any], outcome: Outcome) -> None:
    path = BAD / name
    if isinstance(outcome, Accepted):
        result = load_file(path, **options)
        assert len(result.questions) == outcome.questions
        assert [w.row for w in result.warnings] == list(outcome.repaired_rows)
        assert not result.skipped
        return
    with pytest.raises(DatasetError) as info:
        load_file(path, **options)
    message = str(info.value)
    assert outcome.says in message
    if isinstance(outcome, FileRejected):
        assert message.startswith(f"{path}: ") and info.value.problem is None
        with pytest.raises(DatasetError):
            load_file(path, skip_invalid=True, **options)
        return
    assert message.startswith(f"{path}:{outcome.row}: ")
    assert info.value.problem is not None and info.value.problem.row == outcome.row
    assert "--skip-invalid" in message  # says how to go on
    # Skipping costs that row only; every other row of the file still loads.
    result = load_file(path, skip_invalid=True, **options)
    assert [p.row for p in result.skipped] == [outcome.row]
    assert outcome.says in result.skipped[0].message
    assert len(result.questions) == count_rows(path) - 1


def gen_args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["generate", "--data", str(data), "--target", "scripted/bad-input-oracle",
            "--proposer", "template", "--similarity-floor", "0", "--samples", "2",
            "--max-expansions", "2", "--run-dir", str(run_dir), *extra]  # fmt: skip


REJECTED = [(n, o) for n, opts, o in CASES if not isinstance(o, Accepted) and not opts]


@pytest.mark.parametrize(("name", "outcome"), REJECTED, ids=[c[0] for c in REJECTED])
def test_cli_rejects_with_file_and_row(name: str, outcome: Outcome, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, gen_args(BAD / name, tmp_path / "run"))
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())  # rich wraps long lines
    where = f"{name}:{outcome.row}:" if isinstance(outcome, Rejected) else f"{name}:"
    assert where in flat and " ".join(outcome.says.split()) in flat
    assert "Traceback" not in res.output


class Oracle:
    """A scripted target that knows every answer and is fooled by any added sentence.

    It also keeps each request, so a test can check how question text reached the model.
    """

    def __init__(self, questions: list[Question]) -> None:
        self.questions = questions
        self.requests: list[GenerateRequest] = []

    def __call__(self, req: GenerateRequest, sample: int) -> str:
        self.requests.append(req)
        mcq = req.mcq
        assert mcq is not None
        q = max(
            (q for q in self.questions if q.question in mcq.question), key=lambda q: len(q.question)
        )
        right = mcq.choices.index(q.answer_text)
        pick = right if mcq.question == q.question else (right + 1) % len(mcq.choices)
        return f"Let me think.\nAnswer: {LETTERS[pick]}"


def huge_file(tmp_path: Path) -> Path:
    # Generated here: megabyte fields have no place in the repository.
    rows = [
        {
            "question": "background " * 100_000 + "Which number is the largest?",
            "choices": ["ten", "one", "x" * 200_000],
            "answer": "ten",
            "notes": "n" * 500_000,
        },
        {"question": "Which animal barks?", "choices": ["dog", "cat", "cow"], "answer": "dog"},
    ]
    path = tmp_path / "huge.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "name", ["control_chars.jsonl", "prompt_injection.jsonl", "distraction_markers.jsonl", "huge"]
)
def test_odd_rows_are_searched_safely(name: str, tmp_path: Path) -> None:
    path = huge_file(tmp_path) if name == "huge" else BAD / name
    questions = load_file(path).questions
    oracle = REGISTRY["bad-input-oracle"] = Oracle(questions)
    res = CliRunner().invoke(app, gen_args(path, tmp_path / "run", "--json"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["incomplete"] == 0 and summary["unfinished"] == 0
    # Terminal control sequences in the data never reach the user's terminal.
    assert "\x1b" not in res.output and "\x00" not in res.output

    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        stored = {d["id"]: d for d in store.questions()}
        # Kept verbatim: no character of the data was dropped, escaped or "cleaned".
        assert [stored[q.id]["question"] for q in questions] == questions
        assert {stored[q.id]["status"] for q in questions} == {"done"}
        for q in questions:
            (root,) = [n for n in store.nodes(q.id) if n["parent_path"] is None]
            assert root["question"] == q.question and tuple(root["choices"]) == q.choices
    # The question text reaches the target as the user's text, never as instructions.
    for req in oracle.requests:
        (system, user) = req.messages
        assert system == ("system", TARGET_SYSTEM)
        assert user[0] == "user" and req.mcq is not None and req.mcq.question in user[1]

    out = tmp_path / "examples.jsonl"
    res = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--output", str(out)])
    assert res.exit_code == 0, res.output
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_id = {q.id: q for q in questions}
    for ex in exported:
        q = by_id[ex["question_id"]]
        assert ex["original_question"] == q.question and q.question in ex["question"]
        assert sorted(ex["choices"]) == sorted(q.choices)
        assert ex["choices"][ex["answer"]] == q.answer_text
    if name != "distraction_markers.jsonl":  # there, option-labelling choices are filtered out
        assert {ex["question_id"] for ex in exported} == set(by_id)


def test_skip_invalid_searches_the_rest_and_reports_the_row(tmp_path: Path) -> None:
    path = BAD / "mixed_encodings.jsonl"
    questions = load_file(path, skip_invalid=True).questions
    REGISTRY["bad-input-oracle"] = Oracle(questions)
    res = CliRunner().invoke(app, gen_args(path, tmp_path / "run", "--skip-invalid"))
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "skipped 1 invalid rows" in flat and "mixed_encodings.jsonl:2:" in flat


# --- property-based: random rows never break the loader ------------------------------------------

# Strings with the characters that have broken parsers before: quotes, braces, control
# characters, non-ASCII, and lone surrogates (which JSON escapes can produce).
_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(['"', "\\", "{", "}", "\x00", "\n", "\u2028", "\ud800", "\udfff", "\udc80"]),
)
_text = st.text(_chars, max_size=12)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 30), st.floats(allow_nan=True), _text,
    st.sampled_from(["A", "b", "Z", "0", "2", " ", ""]),
)  # fmt: skip
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_choices = st.one_of(
    st.lists(st.one_of(_text, st.integers(0, 5), st.sampled_from(["a", "b", " a"])), max_size=6),
    st.fixed_dictionaries(
        {"text": st.lists(_text, max_size=5), "label": st.lists(_text, max_size=5)}
    ),
    _json,
)
_row = st.fixed_dictionaries(
    {},
    optional={
        "question": st.one_of(_text, _json),
        "choices": _choices,
        "answer": _scalar,
        "answerKey": _scalar,
        "id": st.one_of(_text, st.integers(0, 3)),
        "source": _scalar,
        "subject": _json,
        "extra": _json,
    },
)
# A line of a JSONL file: a row, or any other JSON value, or raw bytes (broken JSON, bad UTF-8).
_line = st.one_of(
    _row.map(lambda r: json.dumps(r).encode()),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b" ")),
    # Lines that once escaped as exceptions other than DatasetError: a number longer than Python
    # converts, nesting deeper than the decoder recurses.
    st.sampled_from(
        [
            b'{"question": "q?", "choices": ["a", "b"], "answer": 1' + b"0" * 4400 + b"}",
            b'{"question": "q?", "choices": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}",
        ]
    ),
)


def _load(data: bytes, suffix: str, **kw: Any) -> tuple[Path, Any]:
    # A fixed file name, so two loads of the same bytes give questions with the same source and id.
    path = Path(tempfile.mkdtemp()) / f"rows{suffix}"
    path.write_bytes(data)
    try:
        return path, load_file(path, **kw)
    except DatasetError as exc:
        return path, exc
    finally:
        path.unlink()
        path.parent.rmdir()


def _check_question(q: Question) -> None:
    assert isinstance(q, Question)
    assert isinstance(q.question, str) and q.question.strip()
    if q.free_form:
        # A row without choices is a free-form question: its accepted answers, each distinct.
        assert q.choices == () and q.answer == -1 and q.references
        assert all(isinstance(r, str) and r.strip() for r in q.references)
        assert len({r.strip() for r in q.references}) == len(q.references)
        json.dumps(q.to_dict(), ensure_ascii=False).encode("utf-8")
        return
    assert 2 <= len(q.choices) <= 26 and all(isinstance(c, str) and c.strip() for c in q.choices)
    assert len({c.strip() for c in q.choices}) == len(q.choices)
    assert 0 <= q.answer < len(q.choices)
    # Whatever loads can be stored, sent and exported: it is valid Unicode text.
    json.dumps(q.to_dict(), ensure_ascii=False).encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, min_size=1, max_size=6))
def test_random_jsonl_rows_give_questions_or_an_error_naming_the_row(lines: list[bytes]) -> None:
    data = b"\n".join(lines) + b"\n"
    # Row numbers are line numbers; blank lines (as text: a BOM or U+001C are blank) are not rows.
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    rows = [i for i, line in enumerate(text.split("\n")[:-1], start=1) if line.strip()]
    path, strict = _load(data, ".jsonl")
    _, lenient = _load(data, ".jsonl", skip_invalid=True)
    if not rows:
        assert isinstance(strict, DatasetError) and "contains no questions" in str(strict)
        return
    assert not isinstance(lenient, DatasetError), lenient  # row defects are never fatal here
    for q in lenient.questions:
        _check_question(q)
    skipped = [p.row for p in lenient.skipped]
    assert set(skipped) <= set(rows) and len(skipped) + len(lenient.questions) == len(rows)
    if skipped:
        # Without skipping, the load stops at the first bad row and names it.
        assert isinstance(strict, DatasetError) and strict.problem is not None
        assert strict.problem.row == skipped[0]
        assert str(strict).startswith(f"{path}:{skipped[0]}: ")
    else:
        assert not isinstance(strict, DatasetError)
        assert strict.questions == lenient.questions


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_row, _json), min_size=1, max_size=5))
def test_random_json_list_rows_give_questions_or_an_error_naming_the_row(items: list[Any]) -> None:
    path, result = _load(json.dumps(items).encode(), ".json", skip_invalid=True)
    assert not isinstance(result, DatasetError), result
    for q in result.questions:
        _check_question(q)
    assert len(result.questions) + len(result.skipped) == len(items)
    assert all(str(p).startswith(f"{path}:{p.row}: ") for p in result.skipped)


_cell = st.text(st.sampled_from([*string.ascii_letters[:6], ",", '"', " ", "[", "]", "\r"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_cell, min_size=0, max_size=6), min_size=1, max_size=5))
def test_random_csv_rows_give_questions_or_an_error_naming_the_row(rows: list[list[str]]) -> None:
    header = "question,A,B,C,answer\n"
    body = "".join(",".join(json.dumps(c) if "," in c else c for c in r) + "\n" for r in rows)
    path, result = _load((header + body).encode(), ".csv", skip_invalid=True)
    if isinstance(result, DatasetError):
        # Only the file as a whole may fail: e.g. it holds no data row at all.
        assert result.problem is None and str(result).startswith(f"{path}: ")
        return
    for q in result.questions:
        _check_question(q)
    assert all(str(p).startswith(f"{path}:{p.row}: ") for p in result.skipped)


# --- property-based: random replies never break the parsers ------------------------------------

_choice_lists = st.lists(st.text(_chars, min_size=1, max_size=8), min_size=2, max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(_chars, max_size=80), st.text(max_size=300)), _choice_lists)
def test_any_reply_gets_a_recorded_status(reply: str, choices: list[str]) -> None:
    reading = read_answer(reply, choices)
    assert reading.reason in ("", "outside", "no answer", "ambiguous")
    assert (reading.reason == "") == (reading.index is not None)
    if reading.index is not None:
        assert 0 <= reading.index < len(choices)


@pytest.mark.parametrize(
    "reply",
    [
        "I'm sorry, but I can't answer a question like that.",
        "I cannot answer a question that asks me to guess.",
        "The answer is a matter of taste, so I won't pick one.",
    ],
)
def test_a_refusal_names_no_choice(reply: str) -> None:
    # Read as "A", a refusal would count as an answer, and as the right one whenever A is.
    assert read_answer(reply, ["x", "y", "z"]).index is None


@pytest.mark.parametrize(
    ("reply", "index"),
    [("Answer: a", 0), ("the answer is b.", 1), ("Answer: (c) because", 2), ("answer is C", 2)],
)
def test_lower_case_answer_letters_still_count(reply: str, index: int) -> None:
    assert read_answer(reply, ["x", "y", "z"]).index == index


def _same(a: str, b: str) -> bool:
    def key(c: str) -> str:
        return " ".join(c.strip(" \t\n\"'*").rstrip(".").lower().split())

    return a == b or key(a) == key(b)


@settings(max_examples=200, deadline=None)
@given(st.text(_chars, max_size=60), st.integers(0, 25), _choice_lists)
def test_the_final_answer_line_wins(prose: str, index: int, choices: list[str]) -> None:
    letter = LETTERS[index]
    reading = read_answer(f"{prose}\nAnswer: {letter}", choices)
    if any(c.strip().lower() == letter.lower() for c in choices):
        # The letter is also a choice's whole text: the reader may refuse to guess.
        assert reading.index in (None, index) or _same(choices[reading.index], letter)
    elif index < len(choices):
        # Identical choices are one answer (the reader reports the first of them).
        assert reading.index is not None and _same(choices[reading.index], choices[index])
    else:
        assert reading.index is None


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.text(_chars, max_size=120), st.text(st.sampled_from('{}[]":, a1'), max_size=60))
)
@example('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
@example("{" * 500)
def test_any_text_gives_a_json_object_or_malformed(text: str) -> None:
    try:
        obj = parse_json_object(text)
    except MalformedJSON:
        return
    assert isinstance(obj, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(exclude_characters="{}"), max_size=40),
    st.dictionaries(st.text(max_size=5), _scalar.filter(lambda v: v == v), max_size=4),
    st.text(st.characters(exclude_characters="{}"), max_size=40),
)
def test_a_json_object_inside_prose_is_found(before: str, obj: dict[str, Any], after: str) -> None:
    text = f"{before}{json.dumps(obj)}{after}"
    assert parse_json_object(text) == obj


# --- property-based: random judge replies always give a verdict ---------------------------------


class _Replies:
    """A judge client that answers each try with the next of ``replies``."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.asked = 0

    async def complete(self, req: GenerateRequest, *, sample: int = 0) -> str:
        self.asked += 1
        return self.replies[sample % len(self.replies)]


_verdict_values = st.one_of(
    st.booleans(), st.none(), st.integers(-1, 2), st.lists(st.booleans(), max_size=2),
    st.sampled_from(["true", "false", "yes", "no", " No. ", "maybe", "", "TRUE"]), _text,
)  # fmt: skip
_verdict_json = st.builds(
    lambda v, r: json.dumps({"changes_answer": v, "reason": r}), _verdict_values, _text
)
_judge_reply = st.one_of(
    st.text(_chars, max_size=80),
    st.tuples(
        st.sampled_from(["", "```json\n", "Verdict: "]),
        _verdict_json,
        st.sampled_from(["", "\n```", " Hope this helps."]),
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_judge_reply, min_size=1, max_size=3))
def test_any_judge_reply_gives_a_recorded_verdict(replies: list[str]) -> None:
    q = Question("q", "Which colour is the sky?", ("blue", "red"), 0)
    child = Node(path="r.0", depth=2, question="I like red. " + q.question, choices=q.choices,
                 answer=0, parent_path="r")  # fmt: skip
    client = _Replies(replies)
    judge = LLMJudge(client, retries=3)  # type: ignore[arg-type]
    verdict = asyncio.run(judge.check(q, Node.root(q), child))
    assert isinstance(verdict.passed, bool) and isinstance(verdict.reason, str)
    # Only a clear "does not change the answer" keeps a child: no reply, no pass.
    said_no = []
    for reply in replies * 3:
        try:
            value = parse_json_object(reply)["changes_answer"]
        except (MalformedJSON, KeyError):
            continue
        if value is False or (
            isinstance(value, str) and value.strip().strip(".").lower() in ("false", "no")
        ):
            said_no.append(True)
            break
        if value is True or (
            isinstance(value, str) and value.strip().strip(".").lower() in ("true", "yes")
        ):
            said_no.append(False)
            break
    assert verdict.passed == (said_no == [True])
    if not said_no:
        assert "no valid verdict after 3 tries" in verdict.reason and client.asked == 3
