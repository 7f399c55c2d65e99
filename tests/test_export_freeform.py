"""Exports of free-form runs (numeric, short answer): jsonl, hf, reference and lm-eval."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cdvkit.data.question import NO_CHOICE, NUMERIC, SHORT_ANSWER
from cdvkit.evaluation import load_examples_file
from cdvkit.export import export_lm_eval, export_run, reference_entries
from cdvkit.export.lm_eval import FINAL_NUMBER, FREE_PROMPT, NUMBER_NOISE
from cdvkit.store import RunStore
from freeform_helpers import FREE_QUESTIONS, make_free_run
from lm_eval_helpers import load_task_yaml

REFS = {q.id: q.references[0] for q in FREE_QUESTIONS}


@pytest.fixture(scope="module")
def free_run(tmp_path_factory):
    return make_free_run(tmp_path_factory.mktemp("free") / "run")


@pytest.fixture(scope="module")
def examples(free_run):
    with RunStore(free_run, lock=False, readonly=True) as store:
        return list(store.examples())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class RowsStore:
    """What the lm-eval export reads of a store, for example rows no single run writes."""

    def __init__(self, run_dir: Path, rows: list[dict], questions: list = ()) -> None:
        self.run_dir, self.rows, self._questions = run_dir, rows, list(questions)

    def get_config(self) -> dict:
        return {"target": "scripted/x"}

    def examples(self):
        return iter(self.rows)

    def questions(self) -> list[dict]:
        return [{"question": q, "status": "done"} for q in self._questions]


def free_row(qid: str, task: str, original: str, distracted: str, refs: list[str]) -> dict:
    return {
        "question_id": qid,
        "source": "trivia",
        "subject": None,
        "original_question": original,
        "original_choices": [],
        "original_answer": NO_CHOICE,
        "original_rate": 1.0,
        "question": distracted,
        "choices": [],
        "answer": NO_CHOICE,
        "answer_text": refs[0],
        "rate": 0.0,
        "depth": 2,
        "path": "r.0",
        "distraction": distracted.replace(original, "").strip(),
        "placement": "suffix",
        "target_option": "wrong",
        "task": task,
        "references": refs,
    }


TRIVIA = [
    free_row(
        "band",
        SHORT_ANSWER,
        "Which band recorded Abbey Road?",
        "Which band recorded Abbey Road? The Rolling Stones toured that year.",
        ["The Beatles", "Beatles", "Fab Four"],
    ),
    free_row(
        "capital",
        SHORT_ANSWER,
        "What is the capital of Australia?",
        "Sydney is the largest city. What is the capital of Australia?",
        ["Canberra"],
    ),
]


# --- jsonl, hf, reference ------------------------------------------------------------------------
def test_jsonl_rows_carry_task_and_references_and_read_back(free_run, examples, tmp_path):
    res = export_run(free_run, "jsonl", tmp_path / "ex.jsonl")
    rows = jsonl(res.path)
    assert res.count == len(rows) == len(examples) == 9
    for r in rows:
        assert r["task"] == NUMERIC and r["references"] == [REFS[r["question_id"]]]
        assert r["answer_text"] == REFS[r["question_id"]]
        assert (r["choices"], r["answer"], r["original_choices"], r["original_answer"]) == (
            [],
            NO_CHOICE,
            [],
            NO_CHOICE,
        )
        assert r["target"] == "scripted/free-oracle" and r["target_option"]
    back = load_examples_file(res.path)
    assert back.kind == "jsonl" and [i.id for i in back.items] == ["eggs", "pens", "miles"]
    for item in back.items:
        variants = [item.original, *item.examples]
        assert len(item.examples) == 3
        assert all(v.task == NUMERIC and v.references == (REFS[item.id],) for v in variants)
        assert all(v.choices == () and v.answer == NO_CHOICE for v in variants)
        assert item.original.question == next(q.question for q in FREE_QUESTIONS if q.id == item.id)
    pens = next(i for i in back.items if i.id == "pens")
    assert pens.dataset == "math"


def test_hf_export_holds_free_form_rows(free_run, examples, tmp_path):
    import datasets

    res = export_run(free_run, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(res.path))
    assert res.count == len(ds) == len(examples)
    assert {"task", "references"} <= set(ds.features)
    assert ds.features["task"].dtype == "string"
    assert set(ds["task"]) == {NUMERIC}
    assert ds["references"] == [[REFS[ex["question_id"]]] for ex in examples]
    assert ds["choices"] == [[]] * len(ds) and set(ds["answer"]) == {NO_CHOICE}
    assert ds["question"] == [ex["question"] for ex in examples]
    assert ds["target_option"] == [ex["target_option"] for ex in examples]


async def test_hf_export_puts_multiple_choice_rows_in_the_same_schema(tmp_path):
    import datasets

    from eval_helpers import QUESTIONS, build_run
    from scripted_helpers import oracle_responder

    run = await build_run(tmp_path / "run")
    ds = datasets.load_from_disk(str(export_run(run, "hf", tmp_path / "hf").path))
    assert len(ds) > 0
    assert set(ds["task"]) == {"multiple_choice"} and ds["references"] == [[]] * len(ds)
    # A run without examples still exports a loadable dataset, with the new columns too.
    empty = await build_run(tmp_path / "empty", target=oracle_responder(QUESTIONS, fooled_at=99))
    ds = datasets.load_from_disk(str(export_run(empty, "hf", tmp_path / "hf0").path))
    assert len(ds) == 0 and {"task", "references", "question"} <= set(ds.features)


def test_reference_export_of_a_free_form_run(free_run, examples, tmp_path):
    res = export_run(free_run, "reference", tmp_path / "ref.json")
    entries = json.loads(res.path.read_text())
    assert res.count == 3
    with RunStore(free_run, lock=False, readonly=True) as store:
        assert reference_entries(store) == entries
    assert [e["id"] for e in entries] == ["eggs", "pens", "miles"]
    for e in entries:
        ref = REFS[e["id"]]
        assert e["choices"] == [] and e["answer"] == ref
        assert e["task"] == NUMERIC and e["references"] == [ref]
        goods = e["good_questions"]
        assert [g["question"] for g in goods] == [
            ex["question"] for ex in examples if ex["question_id"] == e["id"]
        ]
        for g in goods:
            assert g["ori_question"] == e["question"] != g["question"]
            assert g["choices"] == [] and g["ground_truth"] == ref


# --- lm-eval, loglik mode: the folder ----------------------------------------------------------
def test_lm_eval_loglik_folder_of_a_numeric_run_has_gsm8k_like_tasks(free_run, examples, tmp_path):
    import yaml

    res = export_run(free_run, "lm-eval", tmp_path / "task", task="cdv math", mode="loglik")
    assert sorted(p.name for p in res.files) == [
        "README.md",
        "cdv_math_distracted.jsonl",
        "cdv_math_distracted.yaml",
        "cdv_math_original.jsonl",
        "cdv_math_original.yaml",
    ]
    assert res.count == 3  # the first example per question
    for variant in ("original", "distracted"):
        cfg = yaml.safe_load((res.path / f"cdv_math_{variant}.yaml").read_text())
        assert cfg["task"] == f"cdv_math_{variant}" and cfg["tag"] == ["cdv_math"]
        assert cfg["output_type"] == "generate_until" and "doc_to_choice" not in cfg
        assert cfg["doc_to_text"] == FREE_PROMPT == "Question: {{question}}\nAnswer:"
        assert cfg["doc_to_target"] == "answer"
        assert cfg["dataset_kwargs"]["data_files"]["test"] == str(
            (res.path / f"cdv_math_{variant}.jsonl").resolve()
        )
        assert "Question:" in cfg["generation_kwargs"]["until"]
        assert cfg["generation_kwargs"]["do_sample"] is False
        (pipeline,) = cfg["filter_list"]
        assert pipeline["name"] == "final-number"
        assert [f["function"] for f in pipeline["filter"]] == ["regex", "take_first"]
        assert pipeline["filter"][0]["regex_pattern"] == FINAL_NUMBER
        (metric,) = cfg["metric_list"]
        assert metric["metric"] == "exact_match" and metric["ignore_case"] is True
        assert metric["ignore_punctuation"] is False  # it would read -1.5 as 15
        assert metric["regexes_to_ignore"] == NUMBER_NOISE
    first = {}
    for ex in examples:
        first.setdefault(ex["question_id"], ex)
    for variant, field in (("original", "original_question"), ("distracted", "question")):
        rows = jsonl(res.path / f"cdv_math_{variant}.jsonl")
        assert [r["id"] for r in rows] == ["eggs", "pens", "miles"]
        for r in rows:
            assert r["question"] == first[r["id"]][field]
            assert r["answer"] == REFS[r["id"]] and r["references"] == [REFS[r["id"]]]
            assert r["task"] == NUMERIC
    every = export_run(
        free_run, "lm-eval", tmp_path / "all", task="x", all_examples=True, mode="loglik"
    )
    assert every.count == 9


def test_lm_eval_loglik_short_answer_tasks_are_modelled_on_triviaqa(tmp_path):
    import yaml

    store = RowsStore(tmp_path / "run", TRIVIA)
    res = export_lm_eval(store, tmp_path / "task", task="trivia", mode="loglik")
    cfg = yaml.safe_load((res.path / "trivia_distracted.yaml").read_text())
    assert cfg["output_type"] == "generate_until" and cfg["doc_to_text"] == FREE_PROMPT
    assert cfg["doc_to_target"] == "references"  # every alias counts
    assert cfg["generation_kwargs"]["until"] == ["\n", ".", ","]
    assert [f["function"] for f in cfg["filter_list"][0]["filter"]] == [
        "remove_whitespace",
        "take_first",
    ]
    metric = cfg["metric_list"][0]
    assert (metric["metric"], metric["ignore_case"], metric["ignore_punctuation"]) == (
        "exact_match",
        True,
        True,
    )
    rows = jsonl(res.path / "trivia_original.jsonl")
    assert rows[0]["references"] == ["The Beatles", "Beatles", "Fab Four"]
    assert rows[0]["answer"] == "The Beatles"


def test_lm_eval_gives_rows_of_several_shapes_a_task_pair_each(tmp_path):
    numeric = free_row("eggs", NUMERIC, "How many eggs?", "Hens. How many eggs?", ["13"])
    mc = {
        **free_row("sky", SHORT_ANSWER, "Sky color?", "Grass. Sky color?", ["blue"]),
        "original_choices": ["blue", "green"],
        "original_answer": 0,
        "choices": ["green", "blue"],
        "answer": 1,
    }
    for k in ("task", "references"):
        del mc[k]
    store = RowsStore(tmp_path / "run", [numeric, *TRIVIA, mc])
    res = export_lm_eval(store, tmp_path / "t", mode="loglik")
    names = sorted(p.name for p in res.files if p.suffix == ".yaml")
    assert names == [
        f"cdv_run_{shape}_{variant}.yaml"
        for shape in ("multiple_choice", "numeric", "short_answer")
        for variant in ("distracted", "original")
    ]
    assert res.count == 4
    assert len(jsonl(res.path / "cdv_run_short_answer_original.jsonl")) == 2
    assert jsonl(res.path / "cdv_run_multiple_choice_distracted.jsonl")[0]["labels"] == ["A", "B"]
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    loaded = tm.load(["cdv_run"])["tasks"]  # one tag runs them all
    assert {name: task.OUTPUT_TYPE for name, task in loaded.items()} == {
        f"cdv_run_{shape}_{variant}": kind
        for shape, kind in (
            ("multiple_choice", "multiple_choice"),
            ("numeric", "generate_until"),
            ("short_answer", "generate_until"),
        )
        for variant in ("original", "distracted")
    }
    # The protocol mode writes the same pairs, each asked as the protocol asks its shape.
    res = export_lm_eval(store, tmp_path / "p")
    assert sorted(p.name for p in res.files if p.suffix == ".yaml") == names
    loaded = TaskManager(include_path=str(res.path), include_defaults=False).load(["cdv_run"])
    assert {task.OUTPUT_TYPE for task in loaded["tasks"].values()} == {"generate_until"}
    readme = (res.path / "README.md").read_text()
    assert "`cdv_run_numeric_original`: accuracy on the original numeric questions" in readme
    assert ", on the short answer questions." in readme


def test_lm_eval_export_of_a_free_form_run_without_examples(tmp_path):
    import yaml

    store = RowsStore(tmp_path / "run", [], questions=FREE_QUESTIONS)
    res = export_lm_eval(store, tmp_path / "task", task="none", mode="loglik")
    assert res.count == 0
    cfg = yaml.safe_load((res.path / "none_original.yaml").read_text())
    assert cfg["output_type"] == "generate_until" and cfg["doc_to_target"] == "answer"
    assert cfg["doc_to_text"] == FREE_PROMPT
    res = export_lm_eval(store, tmp_path / "protocol", task="none")
    assert res.count == 0 and jsonl(res.path / "none_distracted.jsonl") == []
    cfg = load_task_yaml(res.path / "none_original.yaml")
    assert cfg["output_type"] == "generate_until" and cfg["repeats"] == 5  # the default n


# --- lm-eval, loglik mode: loaded and scored by lm-eval itself -----------------------------------
REPLIES = [
    # (reply, reference, right?) as lm-eval's own filter and metric judge them.
    (" 13", "13", True),
    (" 13.", "13", True),
    ("Step by step: 16 - 3 = 13.\nAnswer: 13", "13", True),
    ("Answer: 13. That leaves 13 of the 16 eggs", "13", True),
    ("**Answer:** **13**", "13", True),
    ("the answer: 14\nor maybe 13", "13", False),  # the marked number, not the last one
    (" $1,080.00", "1080", True),
    ("It comes to 1080", "$1,080", True),
    ("45 * 2 = 90 miles", "90", True),
    ("#### 72", "72", True),
    (" -5", "5", False),
    (" 1.5", "15", False),
    (" 0.5", "0.5", True),
    (" 25", "25%", True),
    (" I cannot tell.", "13", False),
]


@pytest.mark.parametrize(("reply", "reference", "right"), REPLIES)
def test_lm_eval_reads_the_final_number(reply, reference, right):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    (got,) = RegexFilter(regex_pattern=FINAL_NUMBER, group_select=-1).apply([[reply]], [{}])[0]
    score = exact_match_hf_evaluate(
        predictions=[got],
        references=[reference],
        ignore_case=True,
        ignore_punctuation=False,
        regexes_to_ignore=NUMBER_NOISE,
    )["exact_match"]
    assert score == (1.0 if right else 0.0), got


def test_lm_eval_loads_the_loglik_free_form_tasks_through_its_own_task_manager(
    free_run, examples, tmp_path
):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    res = export_run(free_run, "lm-eval", tmp_path / "task", task="cdv_math", mode="loglik")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    loaded = tm.load(["cdv_math"])["tasks"]  # the tag runs both tasks
    assert set(loaded) == {"cdv_math_original", "cdv_math_distracted"}
    first = {}
    for ex in examples:
        first.setdefault(ex["question_id"], ex)
    for name, task in loaded.items():
        assert task.OUTPUT_TYPE == "generate_until"
        docs = list(task.test_docs())
        assert [d["id"] for d in docs] == ["eggs", "pens", "miles"]
        for doc in docs:
            ex = first[doc["id"]]
            q = ex["question"] if name.endswith("distracted") else ex["original_question"]
            assert task.doc_to_text(doc) == f"Question: {q}\nAnswer:"
            assert task.doc_to_target(doc) == REFS[doc["id"]]
        task.build_all_requests(rank=0, world_size=1)
        assert len(task.instances) == len(docs)
        context, gen_kwargs = task.instances[0].args
        assert context.endswith("\nAnswer:") and "Question:" in gen_kwargs["until"]


def _free_lm(answer):
    """An lm-eval model whose ``generate_until`` replies ``answer(prompt)``."""
    from lm_eval.api.model import LM

    class Scripted(LM):
        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            return [answer(r.args[0]) for r in requests]

    return Scripted()


def test_lm_eval_scores_the_loglik_numeric_tasks_end_to_end(free_run, examples, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.evaluator import evaluate as lm_evaluate
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    right = {
        "eggs": " Step by step: 16 - 3 = 13 eggs.\nAnswer: 13",
        "pens": " $60.00",
        "miles": " 45 * 2 = 90 miles",
    }
    pushed = {ex["question"]: ex["target_option"] for ex in examples}

    def answer(prompt: str) -> str:
        question = prompt.removeprefix("Question: ").removesuffix("\nAnswer:")
        if question in pushed:  # distracted: fooled, though the right number shows up after
            qid = next(ex["question_id"] for ex in examples if ex["question"] == question)
            return f" **Answer:** {pushed[question]}\n(not {REFS[qid]})"
        return right[next(q.id for q in FREE_QUESTIONS if q.question == question)]

    res = export_run(free_run, "lm-eval", tmp_path / "task", task="cdv_e2e", mode="loglik")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    out = lm_evaluate(
        lm=_free_lm(answer), task_dict=tm.load(["cdv_e2e"]), bootstrap_iters=0, log_samples=False
    )["results"]
    assert out["cdv_e2e_original"]["exact_match,final-number"] == pytest.approx(1.0)
    assert out["cdv_e2e_distracted"]["exact_match,final-number"] == pytest.approx(0.0)


def test_lm_eval_scores_the_loglik_short_answer_tasks_end_to_end(tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.evaluator import evaluate as lm_evaluate
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    replies = {
        # Originals: right, by an alias and by another case.
        "Which band recorded Abbey Road?": " Fab Four",
        "What is the capital of Australia?": " canberra",
        # Distracted: one right (an alias, with punctuation), one fooled.
        "Which band recorded Abbey Road? The Rolling Stones toured that year.": " Beatles!",
        "Sydney is the largest city. What is the capital of Australia?": " Sydney",
    }

    def answer(prompt: str) -> str:
        return replies[prompt.removeprefix("Question: ").removesuffix("\nAnswer:")]

    store = RowsStore(tmp_path / "run", TRIVIA)
    res = export_lm_eval(store, tmp_path / "task", task="trivia", mode="loglik")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    tasks = tm.load(["trivia"])
    for task in tasks["tasks"].values():
        doc = next(iter(task.test_docs()))
        assert task.doc_to_target(doc) == ["The Beatles", "Beatles", "Fab Four"]
    out = lm_evaluate(lm=_free_lm(answer), task_dict=tasks, bootstrap_iters=0, log_samples=False)[
        "results"
    ]
    assert out["trivia_original"]["exact_match,remove_whitespace"] == pytest.approx(1.0)
    assert out["trivia_distracted"]["exact_match,remove_whitespace"] == pytest.approx(0.5)


# --- lm-eval, protocol mode (the default): the run's protocol itself ----------------------------
def test_lm_eval_protocol_folder_of_a_numeric_run(free_run, examples, tmp_path):
    from cdvkit.tasks.prompts import free_target_request

    res = export_run(free_run, "lm-eval", tmp_path / "task", task="cdv math")
    assert {"protocol.json", "utils.py", "README.md"} <= {p.name for p in res.files}
    cap = free_target_request("q", NUMERIC, temperature=0.01).max_tokens
    for variant, field in (("original", "original_question"), ("distracted", "question")):
        cfg = load_task_yaml(res.path / f"cdv_math_{variant}.yaml")
        assert cfg["output_type"] == "generate_until" and cfg["repeats"] == 2
        assert cfg["generation_kwargs"]["until"] == []
        assert cfg["generation_kwargs"]["max_gen_toks"] == cap
        assert cfg["filter_list"][0]["filter"] == [{"function": "take_first_k", "k": 2}]
        assert cfg["process_results"] == "!function utils.process_results"
        rows = jsonl(res.path / f"cdv_math_{variant}.jsonl")
        assert [r["id"] for r in rows] == ["eggs", "pens", "miles"]
        first = {}
        for ex in examples:
            first.setdefault(ex["question_id"], ex)
        for r in rows:
            q = first[r["id"]][field]
            system, user = free_target_request(q, NUMERIC, temperature=0.01).message_dicts
            assert (r["system"], r["prompt"]) == (system["content"], user["content"])
            assert r["references"] == [REFS[r["id"]]] and r["task"] == NUMERIC
    readme = (res.path / "README.md").read_text()
    assert "n=2, T=0.01, numeric prompt, right if any answer is right" in readme


def planned_free_replies(store, plan):
    """A script answering each free-form question as ``plan`` says, sample by sample: right (the
    reference), wrong (another answer) or mute; found by the user message cdvkit renders."""
    from cdvkit.evaluation import from_store
    from cdvkit.tasks.prompts import free_target_request
    from lm_eval_helpers import by_user_message

    table = {}
    for item in from_store(store).items:
        for n, v in enumerate(item.variants(True)):
            user = free_target_request(v.question, v.task, temperature=0.01).message_dicts[-1]
            table[user["content"]] = (plan[(item.id, "original" if n == 0 else "distracted")], v)
    find = by_user_message(table)

    def reply(messages, sample: int) -> str:
        steps, v = find(messages)
        step = steps[sample % len(steps)]
        if step == "mute":
            return "I would rather not say."
        if step == "right":
            return f"Working it out step by step.\nAnswer: {v.references[-1]}"
        return "Working it out step by step.\nAnswer: 7" if v.task == NUMERIC else "Answer: Oslo"

    return reply


async def test_lm_eval_protocol_numeric_task_reproduces_cdv_evaluate(free_run, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from cdvkit.evaluation import EvalSettings
    from lm_eval_helpers import cdv_evaluate, chat_lm, lm_eval_results

    # Right if any of the 2 answers is right: originals eggs and pens (2/3), examples pens and
    # miles (2/3); lm-eval's first answer alone would give 1/3 and 1/3.
    plan = {
        ("eggs", "original"): ["wrong", "right"],
        ("eggs", "distracted"): ["wrong", "wrong"],
        ("pens", "original"): ["right", "right"],
        ("pens", "distracted"): ["mute", "right"],
        ("miles", "original"): ["mute", "mute"],
        ("miles", "distracted"): ["right", "wrong"],
    }
    res = export_run(free_run, "lm-eval", tmp_path / "task", task="twin")
    with RunStore(free_run, lock=False, readonly=True) as store:
        reply = planned_free_replies(store, plan)
        cdv = await cdv_evaluate(store, EvalSettings(samples=2, resamples=100), reply=reply)
    out = lm_eval_results(res.path, "twin", chat_lm(reply=reply))
    assert out["twin_original"]["acc,protocol"] == pytest.approx(cdv["original"])
    assert out["twin_distracted"]["acc,protocol"] == pytest.approx(cdv["distracted"])
    assert (cdv["original"], cdv["distracted"]) == pytest.approx((2 / 3, 2 / 3))


async def test_lm_eval_protocol_short_answer_task_reproduces_cdv_evaluate(tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from cdvkit.evaluation import EvalSettings
    from lm_eval_helpers import cdv_evaluate, chat_lm, lm_eval_results

    # "right" answers with the last alias ("Fab Four"), which the reader accepts: originals
    # both right, examples band right (its second answer) and capital fooled.
    plan = {
        ("band", "original"): ["right"],
        ("band", "distracted"): ["wrong", "right", "wrong"],
        ("capital", "original"): ["mute", "mute", "right"],
        ("capital", "distracted"): ["wrong"],
    }
    store = RowsStore(tmp_path / "run", TRIVIA)
    res = export_lm_eval(store, tmp_path / "task", task="trivia")  # the default 5 samples
    reply = planned_free_replies(store, plan)
    cdv = await cdv_evaluate(store, EvalSettings(resamples=100), reply=reply)
    out = lm_eval_results(res.path, "trivia", chat_lm(reply=reply))
    assert out["trivia_original"]["acc,protocol"] == pytest.approx(cdv["original"])
    assert out["trivia_distracted"]["acc,protocol"] == pytest.approx(cdv["distracted"])
    assert (cdv["original"], cdv["distracted"]) == pytest.approx((1.0, 0.5))
