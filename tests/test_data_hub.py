"""Built-in hub datasets: converters, the real datasets.load_dataset path on local data, offline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import httpx
import huggingface_hub.constants
import pytest

from cdvkit.data import BUILTINS, DATASETS, SAMPLE, DatasetError, find_dataset
from cdvkit.data.hub import (
    convert_commonsense_qa,
    convert_gsm8k,
    convert_mmlu,
    convert_openbookqa,
    convert_trivia_qa,
    convert_truthfulqa_mc1,
)
from cdvkit.data.question import stable_id
from cdvkit.data.validation import InvalidRow
from cdvkit.tasks import load_builtin, load_file, load_questions, row_shapes

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Any]]:
    """Offline mode as HF_HUB_OFFLINE=1 sets it, plus a socket guard that records any attempt.

    datasets reads the environment once at import, so the flags are patched where it reads them.
    """
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    attempts: list[Any] = []

    def guard(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", guard)
    monkeypatch.setattr(socket.socket, "connect", guard)
    yield attempts
    assert attempts == [], f"a test tried to reach the network: {attempts}"


# ---------------------------------------------------------------------------------------------
# Registry and converters on hand-written rows shaped like the hub's
# ---------------------------------------------------------------------------------------------


def test_builtins_registry() -> None:
    expected = {
        "mmlu": ("cais/mmlu", "all", "test", convert_mmlu, "MMLU"),
        "commonsense_qa": (
            "tau/commonsense_qa",
            None,
            "validation",
            convert_commonsense_qa,
            "CommonsenseQA",
        ),
        "openbookqa": ("allenai/openbookqa", "main", "test", convert_openbookqa, "OpenbookQA"),
        "truthfulqa_mc1": (
            "truthfulqa/truthful_qa",
            "multiple_choice",
            "validation",
            convert_truthfulqa_mc1,
            "TruthfulQA",
        ),
        "gsm8k": ("openai/gsm8k", "main", "test", convert_gsm8k, "GSM8K"),
        "trivia_qa": (
            "mandarjoshi/trivia_qa",
            "rc.nocontext",
            "validation",
            convert_trivia_qa,
            "TriviaQA",
        ),
    }
    assert set(BUILTINS) == set(expected)
    for name, b in BUILTINS.items():
        assert b.name == name
        assert (b.path, b.config, b.split, b.convert, b.source) == expected[name]
        assert b.description.strip()


def test_builtins_are_registered_datasets_found_by_any_name() -> None:
    # --data NAME looks every dataset up in one registry: the sample, the hub built-ins, plugins'.
    assert list(DATASETS)[: len(BUILTINS) + 1] == [SAMPLE, *BUILTINS]
    for name, b in BUILTINS.items():
        d = DATASETS.get(name)
        assert (d.name, d.task, d.where, d.split, d.description) == (
            name,
            b.task,
            b.path,
            b.split,
            b.description,
        )
    assert DATASETS.get(SAMPLE).split is None  # no splits: --split is refused for it
    for spelled, name in [
        ("MMLU", "mmlu"),
        ("obqa", "openbookqa"),
        ("TruthfulQA", "truthfulqa_mc1"),
        ("truthful-qa", "truthfulqa_mc1"),
        ("gsm_8k", "gsm8k"),
        ("TriviaQA", "trivia_qa"),
        ("Commonsense-QA", "commonsense_qa"),
    ]:
        found = find_dataset(spelled)
        assert found is not None and found.name == name, spelled
    assert find_dataset("data/mmlu.json") is None


def test_a_registered_dataset_loads_through_load_questions(mmlu_dir: Path) -> None:
    # The registry's entry reads the hub layout the way load_builtin does.
    direct = load_builtin("mmlu", data_dir=mmlu_dir).questions
    loaded = DATASETS.get("mmlu").load(data_dir=mmlu_dir, shapes=row_shapes())
    assert loaded.questions == direct
    assert load_questions("mmlu", data_dir=mmlu_dir).questions == direct


MMLU_ROW = {
    "question": "Which planet in the solar system has the most massive atmosphere?",
    "subject": "astronomy",
    "choices": ["Mars", "Earth", "Venus", "Mercury"],
    "answer": 2,
}
CSQA_ROW = {
    "id": "1a2b3c",
    "question": "Where do you put a letter so that it is delivered?",
    "question_concept": "letter",
    "choices": {
        "label": ["A", "B", "C", "D", "E"],
        "text": ["oven", "mailbox", "fridge", "bathtub", "garden"],
    },
    "answerKey": "B",
}
OBQA_ROW = {
    "id": "7-980",
    "question_stem": "A magnet will stick to",
    "choices": {"text": ["wood", "glass", "an iron nail", "paper"], "label": ["A", "B", "C", "D"]},
    "answerKey": "C",
}
TQA_ROW = {
    "question": "What happens if you swallow chewing gum?",
    "mc1_targets": {
        "choices": [
            "It stays in your stomach for seven years.",
            "It passes through your digestive system.",
            "It turns into a stone.",
        ],
        "labels": [0, 1, 0],
    },
    "mc2_targets": {"choices": ["a", "b"], "labels": [1, 0]},
}


def test_convert_mmlu() -> None:
    q = convert_mmlu(MMLU_ROW)
    assert q.answer == 2 and q.answer_text == "Venus"
    assert q.subject == "astronomy" and q.source == "MMLU" and q.metadata == {}
    assert q.id == stable_id("MMLU", MMLU_ROW["question"], MMLU_ROW["choices"])


def test_convert_commonsense_qa() -> None:
    q = convert_commonsense_qa(CSQA_ROW)
    assert q.answer == 1 and q.answer_text == "mailbox"
    assert q.choices == ("oven", "mailbox", "fridge", "bathtub", "garden")
    assert q.id == "CommonsenseQA-1a2b3c" and q.source == "CommonsenseQA"
    assert q.metadata == {"question_concept": "letter", "hub_id": "1a2b3c"}


def test_convert_commonsense_qa_answer_follows_labels_not_position() -> None:
    # The label list decides which text answerKey means, whatever order it is in.
    row = {
        **CSQA_ROW,
        "choices": {"label": ["E", "D", "C", "B", "A"], "text": ["v", "w", "x", "y", "z"]},
    }
    assert convert_commonsense_qa(row).answer_text == "y"


def test_convert_openbookqa() -> None:
    q = convert_openbookqa({**OBQA_ROW, "fact1": "iron is magnetic", "humanScore": 1.0})
    assert q.question == "A magnet will stick to" and q.answer_text == "an iron nail"
    assert q.id == "OpenbookQA-7-980" and q.source == "OpenbookQA"
    assert q.metadata == {"fact1": "iron is magnetic", "humanScore": 1.0, "hub_id": "7-980"}


def test_convert_truthfulqa_mc1() -> None:
    q = convert_truthfulqa_mc1(TQA_ROW)
    assert q.answer == 1 and q.answer_text == "It passes through your digestive system."
    assert q.source == "TruthfulQA" and q.metadata == {}
    assert q.id == stable_id("TruthfulQA", TQA_ROW["question"], TQA_ROW["mc1_targets"]["choices"])


@pytest.mark.parametrize(
    ("convert", "row", "defect"),
    [
        (convert_mmlu, {**MMLU_ROW, "answer": 4}, "answer index 4 is out of range"),
        (convert_mmlu, {**MMLU_ROW, "choices": ["a", "b", "a", "c"]}, "duplicate choices"),
        (convert_mmlu, {**MMLU_ROW, "question": ""}, "question is empty"),
        # CommonsenseQA's test split is unlabelled: answerKey is "".
        (convert_commonsense_qa, {**CSQA_ROW, "answerKey": ""}, "answer is missing"),
        (convert_commonsense_qa, {**CSQA_ROW, "choices": ["a", "b"]}, "'label' and 'text'"),
        (convert_openbookqa, {**OBQA_ROW, "answerKey": "F"}, "out of range for 4 choices"),
        (
            convert_truthfulqa_mc1,
            {**TQA_ROW, "mc1_targets": {"choices": ["x", "y", "z"], "labels": [1, 1, 0]}},
            "marks 2 choices correct",
        ),
        (
            convert_truthfulqa_mc1,
            {**TQA_ROW, "mc1_targets": {"choices": ["x", "y"], "labels": [1]}},
            "2 choices but 1 labels",
        ),
        (convert_truthfulqa_mc1, {"question": "q"}, "mc1_targets is missing"),
    ],
)
def test_converters_reject_defective_rows(convert: Any, row: dict[str, Any], defect: str) -> None:
    with pytest.raises(InvalidRow, match=defect):
        convert(row)


@pytest.mark.parametrize("name", ["MMLU", "TruthfulQA"])
def test_hub_rows_get_the_reference_files_ids(name: str) -> None:
    """Neither hub has ids, so a question must get the same stable id from hub or file."""
    path = BENCH / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference benchmark {path} is not available (shared data not checked out)")
    rows = json.loads(path.read_text(encoding="utf-8"))
    from_file = load_file(path).questions
    if name == "MMLU":
        hub_rows = [
            {
                "question": r["question"],
                "subject": r["subject"],
                "choices": r["choices"],
                "answer": r["choices"].index(r["answer"]),
            }
            for r in rows
        ]
        converted = [convert_mmlu(r) for r in hub_rows]
    else:
        hub_rows = [
            {
                "question": r["question"],
                "mc1_targets": {
                    "choices": r["choices"],
                    "labels": [int(c == r["answer"]) for c in r["choices"]],
                },
            }
            for r in rows
        ]
        converted = [convert_truthfulqa_mc1(r) for r in hub_rows]
    assert converted == from_file  # dataclass equality: id, text, choices, answer, source, subject


# ---------------------------------------------------------------------------------------------
# The real datasets.load_dataset path on local data laid out like the hub
# ---------------------------------------------------------------------------------------------


def _parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(path))


def _mmlu_rows(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "question": f"{prefix} question {i}?",
            "subject": "astronomy",
            "choices": ["w", "x", "y", "z"],
            "answer": i % 4,
        }
        for i in range(n)
    ]


@pytest.fixture
def mmlu_dir(tmp_path: Path) -> Path:
    """cais/mmlu's layout without its README: one folder per config, split in file names."""
    root = tmp_path / "mmlu"
    test = _mmlu_rows("all-test", 5)
    test[3]["choices"] = ["same", "same", "y", "z"]  # a defective row the loader must skip
    _parquet(root / "all" / "test-00000-of-00001.parquet", test)
    _parquet(root / "all" / "validation-00000-of-00001.parquet", _mmlu_rows("all-val", 3))
    _parquet(root / "astronomy" / "test-00000-of-00001.parquet", _mmlu_rows("astro", 2))
    return root


def test_load_builtin_from_hub_layout(mmlu_dir: Path, tmp_path: Path) -> None:
    result = load_builtin("mmlu", data_dir=mmlu_dir, cache_dir=tmp_path / "cache")
    # Only the "all" config's default split: not validation, not another config's files.
    assert [q.question for q in result.questions] == [
        "all-test question 0?",
        "all-test question 1?",
        "all-test question 2?",
        "all-test question 4?",
    ]
    assert [q.answer for q in result.questions] == [0, 1, 2, 0]
    assert all(q.source == "MMLU" and q.subject == "astronomy" for q in result.questions)
    assert len(result.skipped) == 1
    problem = result.skipped[0]
    assert problem.row == 4 and "duplicate choices" in problem.message
    assert str(problem).startswith(f"{mmlu_dir} (test):4: ")

    val = load_builtin("mmlu", split="validation", data_dir=mmlu_dir, cache_dir=tmp_path / "c")
    assert [q.question for q in val.questions] == [f"all-val question {i}?" for i in range(3)]


def test_load_builtin_unknown_split(mmlu_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_builtin("mmlu", split="tset", data_dir=mmlu_dir, cache_dir=tmp_path / "cache")
    assert "'mmlu'" in str(info.value) and "tset" in str(info.value)


def test_load_builtin_from_hub_snapshot_with_readme(tmp_path: Path) -> None:
    """allenai/openbookqa's README maps configs main and additional to folders."""
    root = tmp_path / "openbookqa"
    main = [{**OBQA_ROW, "id": f"m{i}", "question_stem": f"main {i}"} for i in range(3)]
    extra = [{**OBQA_ROW, "id": "a0", "question_stem": "additional", "fact1": "f"}]
    _parquet(root / "main" / "test-00000-of-00001.parquet", main)
    _parquet(root / "additional" / "test-00000-of-00001.parquet", extra)
    (root / "README.md").write_text(
        textwrap.dedent(
            """\
            ---
            configs:
            - config_name: main
              data_files:
              - split: test
                path: main/test-*
            - config_name: additional
              data_files:
              - split: test
                path: additional/test-*
            ---
            # OpenBookQA
            """
        ),
        encoding="utf-8",
    )
    result = load_builtin("openbookqa", data_dir=root, cache_dir=tmp_path / "cache")
    assert [q.id for q in result.questions] == ["OpenbookQA-m0", "OpenbookQA-m1", "OpenbookQA-m2"]
    assert all(q.answer_text == "an iron nail" for q in result.questions)


def test_load_builtin_commonsense_default_and_unlabelled_split(tmp_path: Path) -> None:
    """tau/commonsense_qa keeps data/<split>-*.parquet; its test split has no answers."""
    root = tmp_path / "csqa"
    val = [{**CSQA_ROW, "id": f"v{i}"} for i in range(4)]
    test = [{**CSQA_ROW, "id": f"t{i}", "answerKey": ""} for i in range(2)]
    _parquet(root / "data" / "validation-00000-of-00001.parquet", val)
    _parquet(root / "data" / "test-00000-of-00001.parquet", test)
    result = load_builtin("commonsense_qa", data_dir=root, cache_dir=tmp_path / "cache")
    assert [q.id for q in result.questions] == [f"CommonsenseQA-v{i}" for i in range(4)]
    assert all(q.answer_text == "mailbox" for q in result.questions)

    with pytest.raises(DatasetError) as info:
        load_builtin("commonsense_qa", split="test", data_dir=root, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert "no usable questions in split 'test'" in msg and "answer is missing" in msg
    assert "default split is 'validation'" in msg


def test_load_builtin_from_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "tqa.jsonl"
    rows = [TQA_ROW, {**TQA_ROW, "question": "Is the Earth flat?"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = load_builtin("truthfulqa_mc1", data_dir=path, cache_dir=tmp_path / "cache")
    assert [q.question for q in result.questions] == [TQA_ROW["question"], "Is the Earth flat?"]
    assert all(q.answer == 1 for q in result.questions)


def test_load_questions_builtin_with_data_dir_and_limit(mmlu_dir: Path) -> None:
    everything = load_questions("mmlu", data_dir=mmlu_dir).questions
    assert len(everything) == 4
    two = load_questions("MMLU", data_dir=mmlu_dir, limit=2, seed=5)
    assert len(two.questions) == 2 and set(two.questions) <= set(everything)
    assert two.questions == load_questions("mmlu", data_dir=mmlu_dir, limit=2, seed=5).questions
    assert [p.row for p in two.skipped] == [4]


def test_unknown_builtin() -> None:
    with pytest.raises(DatasetError, match="unknown built-in dataset 'nope'"):
        load_builtin("nope")


# ---------------------------------------------------------------------------------------------
# Hub unreachable: one clear DatasetError, never a raw traceback
# ---------------------------------------------------------------------------------------------


def _assert_unreachable(exc: DatasetError, name: str) -> None:
    msg = str(exc)
    assert f"built-in dataset {name!r}" in msg
    assert "Hugging Face Hub is unreachable" in msg
    assert "--data path/to/file.json" in msg
    # Raised "from None": the CLI shows one line, not datasets' chain of errors.
    assert exc.__suppress_context__ and exc.__cause__ is None


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_offline_mode_gives_a_clear_error(name: str, no_network: list[Any]) -> None:
    with pytest.raises(DatasetError) as info:
        load_questions(name)
    _assert_unreachable(info.value, name)
    assert "offline mode is on" in str(info.value)


def test_offline_env_vars_in_a_fresh_process(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE as a user sets them, read at import time."""
    script = textwrap.dedent(
        """\
        from cdvkit.data import DatasetError
        from cdvkit.tasks import load_questions
        try:
            load_questions("openbookqa")
        except DatasetError as exc:
            print("DatasetError:", exc)
            raise SystemExit(3)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),  # an empty cache: nothing to fall back on
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Hugging Face Hub is unreachable (offline mode is on" in proc.stdout
    assert "--data path/to/file.json" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def _raiser(exc: BaseException) -> Any:
    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return load_dataset


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"), "network error"),
        (httpx.ReadTimeout("timed out"), "network error"),
        (TimeoutError("timed out"), "network error"),
        (
            ConnectionError("Couldn't reach 'cais/mmlu' on the Hub (LocalEntryNotFoundError)"),
            "not in the local cache",
        ),
        (
            _chained(RuntimeError("download failed"), socket.gaierror(-2, "Name not known")),
            "network error",
        ),
    ],
)
def test_network_failures_become_dataset_errors(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, reason: str
) -> None:
    monkeypatch.setattr(datasets, "load_dataset", _raiser(exc))
    with pytest.raises(DatasetError) as info:
        load_builtin("mmlu")
    _assert_unreachable(info.value, "mmlu")
    assert reason in str(info.value)


def test_other_failures_are_not_called_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "load_dataset", _raiser(ValueError('Unknown split "x"')))
    with pytest.raises(DatasetError) as info:
        load_builtin("mmlu", split="x")
    assert "unreachable" not in str(info.value) and 'Unknown split "x"' in str(info.value)
    # A bug is not a dataset problem: it must surface as itself.
    monkeypatch.setattr(datasets, "load_dataset", _raiser(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):
        load_builtin("mmlu")
