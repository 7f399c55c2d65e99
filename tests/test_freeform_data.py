"""Free-form datasets: numeric and short-answer rows in local files, and the GSM8K and TriviaQA
built-ins read from local data laid out like the hub (never the network)."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub.constants
import pytest

from cdvkit.data import BUILTINS, DatasetError
from cdvkit.data.hub import convert_gsm8k, convert_trivia_qa
from cdvkit.data.question import (
    MULTIPLE_CHOICE,
    NO_CHOICE,
    NUMERIC,
    SHORT_ANSWER,
    Question,
    stable_id,
)
from cdvkit.data.validation import InvalidRow
from cdvkit.tasks import load_builtin, load_file, load_questions, shape_of

NUMERIC_SHAPE, SHORT_SHAPE = shape_of("numeric"), shape_of("short_answer")

GSM_SOLUTION = (
    "Each box holds 12 * 9 = <<12*9=108>>108 eggs.\n"
    "Ten boxes hold 108 * 10 = <<108*10=1080>>1,080 eggs.\n"
    "#### 1,080"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Offline as in tests/test_data_hub.py, with a socket guard that fails any attempt."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    attempts: list[Any] = []

    def guard(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", guard)
    monkeypatch.setattr(socket.socket, "connect", guard)
    yield
    assert attempts == [], f"a test tried to reach the network: {attempts}"


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _rejects(path: Path, row: int, says: str, **options: Any) -> None:
    """The load stops at ``row`` naming the file and row; skipping costs that row only."""
    with pytest.raises(DatasetError) as info:
        load_file(path, **options)
    message = str(info.value)
    assert message.startswith(f"{path}:{row}: "), message
    assert says in message, message
    assert "--skip-invalid" in message
    assert info.value.problem is not None and info.value.problem.row == row
    result = load_file(path, skip_invalid=True, **options)
    assert [p.row for p in result.skipped] == [row]
    assert says in result.skipped[0].message


# ---------------------------------------------------------------------------------------------
# Inference: the shape comes from the data
# ---------------------------------------------------------------------------------------------


def test_numeric_answers_make_a_numeric_file(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "math.jsonl",
        [
            {"question": "How many legs have 18 cows?", "answer": 72},
            {"question": "How many eggs?", "answer": "1,080"},
            {"question": "What does it cost?", "answer": "$18"},
            {"question": "What share is left?", "answer": 0.5},
            {"question": "Half of one?", "answer": "1/2"},
        ],
    )
    result = load_file(path)
    assert result.task == NUMERIC
    assert [q.task for q in result.questions] == [NUMERIC] * 5
    # Kept as written (numbers as their text), so a reply is judged against the given answer.
    assert [q.references for q in result.questions] == [
        ("72",),
        ("1,080",),
        ("$18",),
        ("0.5",),
        ("1/2",),
    ]
    q = result.questions[0]
    assert q.choices == () and q.answer == NO_CHOICE and q.free_form
    assert q.answer_text == "72" and q.source == "math"


def test_text_answers_make_a_short_answer_file(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "trivia.jsonl",
        [
            {"question": "Capital of France?", "answer": "Paris", "aliases": ["City of Light"]},
            {"question": "Who wrote Hamlet?", "answer": " William Shakespeare "},
            # The numeric reader finds a number in these; as a whole they are no number.
            {"question": "First crewed Moon landing?", "answer": "Apollo 11"},
            {"question": "Which boy band sang 'Night Changes'?", "answer": "One Direction"},
            {"question": "Height of the model?", "answer": "12 cm"},
        ],
    )
    result = load_file(path)
    assert result.task == SHORT_ANSWER
    assert [q.references for q in result.questions] == [
        ("Paris", "City of Light"),
        ("William Shakespeare",),
        ("Apollo 11",),
        ("One Direction",),
        ("12 cm",),
    ]
    # Under --task numeric the reader's reading counts.
    forced = load_file(path, task="numeric", skip_invalid=True)
    assert [q.references for q in forced.questions] == [
        ("Apollo 11",),
        ("One Direction",),
        ("12 cm",),
    ]
    assert [p.row for p in forced.skipped] == [1, 2]


def test_multiple_choice_rows_are_unchanged(tmp_path: Path) -> None:
    row = {"question": "Which is a fruit?", "choices": ["apple", "stone"], "answer": "apple"}
    path = _jsonl(tmp_path / "mc.jsonl", [row, {**row, "question": "Which is food?"}])
    result = load_file(path)
    assert result.task == MULTIPLE_CHOICE
    q = result.questions[0]
    assert q == Question(
        id=stable_id("mc", row["question"], row["choices"]),
        question=row["question"],
        choices=("apple", "stone"),
        answer=0,
        source="mc",
    )
    assert q.task == MULTIPLE_CHOICE and q.references == ()
    assert load_file(path, task="multiple_choice").questions == result.questions


def test_a_gsm8k_solution_gives_the_number_after_the_marks(tmp_path: Path) -> None:
    row = {"question": "How many eggs are in ten boxes?", "answer": GSM_SOLUTION, "level": 2}
    path = _jsonl(tmp_path / "gsm.jsonl", [row])
    (q,) = load_file(path, source="GSM8K").questions
    assert q.task == NUMERIC
    assert q.references == ("1080",)
    assert q.metadata == {"solution": GSM_SOLUTION, "level": 2}
    # The same id as the built-in gives the hub's row.
    row = {"question": row["question"], "answer": GSM_SOLUTION}
    assert q.id == convert_gsm8k(row, NUMERIC_SHAPE).id
    assert q.id == stable_id("GSM8K", row["question"], ["1080"])


def test_ids_are_explicit_or_stable(tmp_path: Path) -> None:
    rows = [
        {"id": "q-7", "question": "Capital of Peru?", "answer": "Lima"},
        {"question": "Capital of Chile?", "answer": "Santiago", "aliases": ["Santiago de Chile"]},
    ]
    path = _jsonl(tmp_path / "caps.jsonl", rows)
    first = load_file(path).questions
    again = load_file(path).questions
    assert [q.id for q in first] == [q.id for q in again]
    assert first[0].id == "q-7"
    assert first[1].id == stable_id("caps", "Capital of Chile?", ["Santiago", "Santiago de Chile"])
    # The aliases are part of what the question is: another alias, another id.
    other = _jsonl(tmp_path / "caps2.jsonl", [{**rows[1], "aliases": []}])
    assert load_file(other, source="caps").questions[0].id != first[1].id


def test_fields_source_subject_and_metadata(tmp_path: Path) -> None:
    row = {
        "question": "Largest planet?",
        "answer": "Jupiter",
        "source": "astro-quiz",
        "subject": 5,
        "difficulty": "easy",
    }
    (q,) = load_file(_jsonl(tmp_path / "p.jsonl", [row])).questions
    assert (q.source, q.subject, q.metadata) == ("astro-quiz", "5", {"difficulty": "easy"})


def test_aliases_repeating_the_answer_are_dropped(tmp_path: Path) -> None:
    row = {"question": "Capital of Italy?", "answer": "Rome", "aliases": [" Rome", "Roma", "Roma"]}
    (q,) = load_file(_jsonl(tmp_path / "it.jsonl", [row])).questions
    assert q.references == ("Rome", "Roma")


# ---------------------------------------------------------------------------------------------
# One shape per file
# ---------------------------------------------------------------------------------------------


def test_a_row_without_choices_in_a_multiple_choice_file(tmp_path: Path) -> None:
    mc = {"question": "Which is a fruit?", "choices": ["apple", "stone"], "answer": "apple"}
    rows = [mc, {**mc, "question": "Which is food?"}, {"question": "Capital?", "answer": "Rome"}]
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    _rejects(path, 3, "choices are missing: this file's other rows are multiple_choice")
    with pytest.raises(DatasetError, match="--task"):
        load_file(path)


def test_the_minority_shape_is_named_whatever_its_position(tmp_path: Path) -> None:
    free = [{"question": f"Capital {i}?", "answer": f"City {i}"} for i in range(3)]
    mc = {"question": "Which is a fruit?", "choices": ["apple", "stone"], "answer": "apple"}
    path = _jsonl(tmp_path / "mixed.jsonl", [mc, *free])
    _rejects(path, 1, "has choices, but this file's other rows are short_answer (from row 2)")


def test_numbers_in_a_short_answer_file_ask_for_task(tmp_path: Path) -> None:
    rows = [
        {"question": "Capital of France?", "answer": "Paris"},
        {"question": "Moon landing year?", "answer": "1969"},
        {"question": "Capital of Spain?", "answer": "Madrid"},
    ]
    path = _jsonl(tmp_path / "trivia.jsonl", rows)
    _rejects(path, 2, "answer '1969' is a number, so this row reads as numeric")
    with pytest.raises(DatasetError, match="--task short_answer"):
        load_file(path)
    forced = load_file(path, task="short_answer")
    assert [q.references for q in forced.questions] == [("Paris",), ("1969",), ("Madrid",)]
    assert {q.task for q in forced.questions} == {SHORT_ANSWER}


def test_a_text_answer_in_a_numeric_file(tmp_path: Path) -> None:
    rows = [{"question": f"{i} + 1?", "answer": i + 1} for i in range(3)]
    rows.insert(1, {"question": "How many?", "answer": "about ten"})
    path = _jsonl(tmp_path / "math.jsonl", rows)
    _rejects(path, 2, "answer 'about ten' is not a number, so this row reads as short_answer")


# ---------------------------------------------------------------------------------------------
# --task: the caller sets the shape, every row is checked for it
# ---------------------------------------------------------------------------------------------


def test_task_numeric_rejects_a_text_answer(tmp_path: Path) -> None:
    rows = [
        {"question": "One?", "answer": 1},
        {"question": "Two?", "answer": "2"},
        {"question": "Ten?", "answer": "about ten"},
    ]
    path = _jsonl(tmp_path / "file.jsonl", rows)
    _rejects(path, 3, "answer 'about ten' is not a number (task numeric)", task="numeric")


def test_task_numeric_rejects_a_solution_without_a_number(tmp_path: Path) -> None:
    rows = [{"question": "Q?", "answer": "12 + 3 = 15\n#### many"}]
    path = _jsonl(tmp_path / "file.jsonl", [{"question": "P?", "answer": 4}, *rows])
    _rejects(path, 2, "a solution whose final answer 'many' is not a number", task="numeric")


def test_task_short_answer_reads_numbers_as_text(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "f.jsonl", [{"question": "Year?", "answer": 1969}])
    (q,) = load_file(path, task="short-answer").questions
    assert (q.task, q.references) == (SHORT_ANSWER, ("1969",))


def test_task_multiple_choice_rejects_a_row_without_choices(tmp_path: Path) -> None:
    mc = {"question": "Which is a fruit?", "choices": ["apple", "stone"], "answer": "apple"}
    path = _jsonl(tmp_path / "f.jsonl", [mc, {"question": "Capital?", "answer": "Rome"}])
    _rejects(path, 2, "choices are missing (task multiple_choice)", task="multiple_choice")


@pytest.mark.parametrize("task", ["numeric", "short_answer"])
def test_choices_under_a_free_form_task_are_a_defect(tmp_path: Path, task: str) -> None:
    rows = [
        {"question": "One?", "answer": "1"},
        {"question": "Two?", "choices": ["2", "3"], "answer": "2"},
    ]
    path = _jsonl(tmp_path / "f.jsonl", rows)
    _rejects(path, 2, f"has choices, but the task is {task}", task=task)


def test_unknown_task(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "f.jsonl", [{"question": "One?", "answer": "1"}])
    with pytest.raises(DatasetError, match="unknown task 'essay'; choose auto or one of multiple"):
        load_file(path, task="essay")
    assert load_file(path, task="auto").task == NUMERIC
    with pytest.raises(DatasetError, match="unknown task 'essay'"):
        load_questions(str(path), task="essay")


# ---------------------------------------------------------------------------------------------
# Formats and defects
# ---------------------------------------------------------------------------------------------


def test_json_list_of_free_form_rows(tmp_path: Path) -> None:
    rows = [
        {"question": "Capital of France?", "answer": "Paris", "aliases": ["paris, france"]},
        {"question": "Capital of Japan?", "answer": "Tokyo"},
    ]
    path = tmp_path / "caps.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = load_file(path)
    assert [q.references for q in result.questions] == [("Paris", "paris, france"), ("Tokyo",)]


def test_csv_free_form_with_aliases_as_json_or_bars(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "trivia.csv",
        ["id", "question", "answer", "aliases", "topic"],
        [
            ["", "Capital of France?", "Paris", '["City of Light", "Lutetia"]', "geo"],
            ["t2", "Author of Hamlet?", "Shakespeare", "Will Shakespeare | the Bard", "lit"],
            ["", "Largest ocean?", "Pacific", "", "geo"],
        ],
    )
    result = load_file(path)
    assert result.task == SHORT_ANSWER
    assert [q.references for q in result.questions] == [
        ("Paris", "City of Light", "Lutetia"),
        ("Shakespeare", "Will Shakespeare", "the Bard"),
        ("Pacific",),
    ]
    assert result.questions[1].id == "t2"
    assert [q.metadata["topic"] for q in result.questions] == ["geo", "lit", "geo"]
    assert all(set(q.metadata) == {"topic"} for q in result.questions)


def test_csv_numeric_and_its_task_errors(tmp_path: Path) -> None:
    path = _csv(tmp_path / "m.csv", ["question", "answer"], [["2+2?", "4"], ["10*10?", "100"]])
    result = load_file(path)
    assert result.task == NUMERIC
    assert [q.references for q in result.questions] == [("4",), ("100",)]
    # Without choice columns a CSV cannot be multiple choice: the header says so at once.
    with pytest.raises(DatasetError, match="header: no choices") as info:
        load_file(path, task="multiple_choice", skip_invalid=True)
    assert info.value.problem is None


def test_csv_with_choice_columns_under_a_free_form_task(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "mc.csv",
        ["question", "A", "B", "answer"],
        [["Fruit?", "apple", "stone", "A"], ["Rock?", "", "", "granite"]],
    )
    with pytest.raises(DatasetError) as info:
        load_file(path, task="short_answer")
    assert str(info.value).startswith(f"{path}:1: has choices, but the task is short_answer")
    # A row whose choice cells are all empty still declares them.
    result = load_file(path, task="short_answer", skip_invalid=True)
    assert [p.row for p in result.skipped] == [1, 2] and not result.questions


MALFORMED = [
    ("answer missing", {"question": "Q?"}, "answer is missing"),
    ("answer blank", {"question": "Q?", "answer": "  "}, "answer is missing"),
    ("answer a list", {"question": "Q?", "answer": ["a"]}, "answer must be text or a number"),
    ("answer boolean", {"question": "Q?", "answer": True}, "answer must be text or a number"),
    ("question missing", {"answer": "a"}, "question is missing"),
    ("question empty", {"question": " ", "answer": "a"}, "question is empty"),
    (
        "aliases a string",
        {"question": "Q?", "answer": "a", "aliases": "b"},
        "aliases must be a list",
    ),
    (
        "alias a number",
        {"question": "Q?", "answer": "a", "aliases": ["b", 3]},
        "alias 2 is not text",
    ),
    ("alias empty", {"question": "Q?", "answer": "a", "aliases": [""]}, "alias 1 is empty"),
]


@pytest.mark.parametrize(("row", "says"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_free_form_rows_name_file_and_row(
    tmp_path: Path, row: dict[str, Any], says: str
) -> None:
    good = [{"question": f"Capital {i}?", "answer": f"City {i}"} for i in range(2)]
    path = _jsonl(tmp_path / "bad.jsonl", [good[0], row, good[1]])
    _rejects(path, 2, says, task="short_answer")


def test_malformed_csv_aliases(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "bad.csv",
        ["question", "answer", "aliases"],
        [["A?", "a", "x|y"], ["B?", "b", "x||y"], ["C?", "c", '["x", 1]'], ["D?", "d", "[oops"]],
    )
    with pytest.raises(DatasetError, match=f"{path}:2: alias 2 is empty"):
        load_file(path)
    result = load_file(path, skip_invalid=True)
    assert [q.question for q in result.questions] == ["A?"]
    assert [str(p).split(". To")[0] for p in result.skipped] == [
        f"{path}:2: alias 2 is empty",
        f"{path}:3: alias 2 is not text: 1",
        f"{path}:4: aliases is not a JSON list: '[oops'",
    ]


def test_duplicate_free_form_questions(tmp_path: Path) -> None:
    rows = [
        {"question": "Capital of France?", "answer": "Paris"},
        {"question": "Capital of France?", "answer": " Paris"},
        {"id": "x", "question": "A?", "answer": "a"},
        {"id": "x", "question": "B?", "answer": "b"},
    ]
    path = _jsonl(tmp_path / "dupes.jsonl", rows)
    result = load_file(path, skip_invalid=True)
    assert [str(p) for p in result.skipped] == [
        f"{path}:2: duplicate question: same question and answers as row 1",
        f"{path}:4: duplicate id 'x' (already used by row 3)",
    ]


def test_skip_invalid_keeps_the_good_rows(tmp_path: Path) -> None:
    rows = [
        {"question": "1+1?", "answer": 2},
        {"question": "2+2?"},
        {"question": "3+3?", "answer": "a few", "aliases": ["6"]},
        {"question": "4+4?", "answer": "8"},
    ]
    path = _jsonl(tmp_path / "math.jsonl", rows)
    result = load_file(path, skip_invalid=True, task="numeric")
    assert [q.references for q in result.questions] == [("2",), ("8",)]
    assert [p.row for p in result.skipped] == [2, 3]


def test_load_questions_passes_task_to_files(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "y.jsonl", [{"question": "Year?", "answer": 1969}])
    assert load_questions(str(path)).questions[0].task == NUMERIC
    assert load_questions(str(path), task="short_answer").questions[0].task == SHORT_ANSWER
    with pytest.raises(DatasetError, match="choices are missing"):
        load_questions(str(path), task="multiple_choice")


def test_the_sample_is_multiple_choice() -> None:
    result = load_questions("sample")
    assert result.task == MULTIPLE_CHOICE
    assert load_questions("sample", task="multiple_choice").questions == result.questions
    with pytest.raises(DatasetError, match="has choices, but the task is numeric"):
        load_questions("sample", task="numeric")


# ---------------------------------------------------------------------------------------------
# Built-ins: GSM8K and TriviaQA
# ---------------------------------------------------------------------------------------------


def test_free_form_builtins_registry() -> None:
    gsm, tqa = BUILTINS["gsm8k"], BUILTINS["trivia_qa"]
    assert (gsm.path, gsm.config, gsm.split, gsm.source, gsm.task) == (
        "openai/gsm8k",
        "main",
        "test",
        "GSM8K",
        NUMERIC,
    )
    assert (tqa.path, tqa.config, tqa.split, tqa.source, tqa.task) == (
        "mandarjoshi/trivia_qa",
        "rc.nocontext",
        "validation",
        "TriviaQA",
        SHORT_ANSWER,
    )
    assert BUILTINS["mmlu"].task == MULTIPLE_CHOICE


TRIVIA_ROW = {
    "question": "Which planet is known as the Red Planet?",
    "question_id": "tc_42",
    "question_source": "http://www.quiz.example/",
    "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
    "search_results": {"description": [], "filename": [], "rank": [], "title": []},
    "answer": {
        "aliases": ["Mars", "Red Planet", "", "Mars (planet)", "Red Planet"],
        "normalized_aliases": ["mars", "red planet", "mars planet"],
        "matched_wiki_entity_name": "",
        "normalized_matched_wiki_entity_name": "",
        "normalized_value": "mars",
        "type": "WikipediaEntity",
        "value": "Mars",
    },
}


def test_convert_gsm8k() -> None:
    q = convert_gsm8k({"question": "How many eggs?", "answer": GSM_SOLUTION}, NUMERIC_SHAPE)
    assert (q.task, q.references, q.source) == (NUMERIC, ("1080",), "GSM8K")
    assert q.metadata == {"solution": GSM_SOLUTION}
    with pytest.raises(InvalidRow, match="without its final '#### <number>' line"):
        convert_gsm8k({"question": "Q?", "answer": "It is 4."}, NUMERIC_SHAPE)
    with pytest.raises(InvalidRow, match="answer is missing"):
        convert_gsm8k({"question": "Q?", "answer": None}, NUMERIC_SHAPE)


def test_convert_trivia_qa() -> None:
    q = convert_trivia_qa(TRIVIA_ROW, SHORT_SHAPE)
    assert q.task == SHORT_ANSWER and q.choices == () and q.answer == NO_CHOICE
    assert q.references == ("Mars", "Red Planet", "Mars (planet)")
    assert q.id == "TriviaQA-tc_42" and q.source == "TriviaQA"
    assert q.metadata == {"question_source": "http://www.quiz.example/", "hub_id": "tc_42"}
    with pytest.raises(InvalidRow, match="answer is missing or not an object"):
        convert_trivia_qa({"question": "Q?", "question_id": "x"}, SHORT_SHAPE)
    with pytest.raises(InvalidRow, match="answer is missing"):
        blank = {**TRIVIA_ROW, "answer": {**TRIVIA_ROW["answer"], "value": ""}}
        convert_trivia_qa(blank, SHORT_SHAPE)


def _parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(path))


def test_load_gsm8k_from_hub_layout(tmp_path: Path) -> None:
    """openai/gsm8k keeps <config>/<split>-*.parquet for configs main and socratic."""
    root = tmp_path / "gsm8k"
    test = [
        {"question": "How many eggs?", "answer": GSM_SOLUTION},
        {"question": "How many legs?", "answer": "4 * 18 = 72\n#### 72"},
        {"question": "Broken?", "answer": "no final line here"},
    ]
    _parquet(root / "main" / "test-00000-of-00001.parquet", test)
    _parquet(root / "main" / "train-00000-of-00001.parquet", [test[1]])
    _parquet(root / "socratic" / "test-00000-of-00001.parquet", [test[0]])
    result = load_builtin("gsm8k", data_dir=root, cache_dir=tmp_path / "cache")
    assert [q.references for q in result.questions] == [("1080",), ("72",)]
    assert [q.metadata["solution"] for q in result.questions] == [GSM_SOLUTION, test[1]["answer"]]
    assert [p.row for p in result.skipped] == [3]
    assert result.task == NUMERIC
    # Through load_questions, by a name people type, twice: the same ids.
    again = load_questions("GSM-8K", data_dir=root, task="numeric")
    assert [q.id for q in again.questions] == [q.id for q in result.questions]
    train = load_builtin("gsm8k", split="train", data_dir=root, cache_dir=tmp_path / "c2")
    assert [q.references for q in train.questions] == [("72",)]


def test_load_trivia_qa_from_hub_layout(tmp_path: Path) -> None:
    root = tmp_path / "trivia_qa"
    second = {
        **TRIVIA_ROW,
        "question": "Who painted the Mona Lisa?",
        "question_id": "tc_43",
        "answer": {**TRIVIA_ROW["answer"], "value": "Leonardo da Vinci", "aliases": ["Leonardo"]},
    }
    _parquet(root / "rc.nocontext" / "validation-00000-of-00001.parquet", [TRIVIA_ROW, second])
    _parquet(root / "rc" / "validation-00000-of-00001.parquet", [second])
    result = load_builtin("trivia_qa", data_dir=root, cache_dir=tmp_path / "cache")
    assert [q.id for q in result.questions] == ["TriviaQA-tc_42", "TriviaQA-tc_43"]
    assert [q.references for q in result.questions] == [
        ("Mars", "Red Planet", "Mars (planet)"),
        ("Leonardo da Vinci", "Leonardo"),
    ]
    assert result.task == SHORT_ANSWER and not result.skipped
    by_alias = load_questions("triviaqa", data_dir=root, limit=1, seed=3)
    assert len(by_alias.questions) == 1 and by_alias.questions[0] in result.questions


def test_load_trivia_qa_from_a_single_file(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "tqa.jsonl", [TRIVIA_ROW])
    result = load_builtin("trivia_qa", data_dir=path, cache_dir=tmp_path / "cache")
    assert [q.references[0] for q in result.questions] == ["Mars"]


def test_a_builtin_keeps_its_own_task(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "tqa.jsonl", [TRIVIA_ROW])
    with pytest.raises(DatasetError, match="holds short_answer questions, so --task numeric"):
        load_builtin("trivia_qa", data_dir=path, task="numeric")
    with pytest.raises(DatasetError, match="holds multiple_choice questions"):
        load_questions("mmlu", task="short_answer")
