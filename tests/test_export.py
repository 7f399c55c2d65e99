"""Exports (jsonl, hf, reference, lm-eval) and the reference-format import."""

from __future__ import annotations

import json
import logging

import pytest

from cdvkit.evaluation import from_store, items_from_reference, load_examples_file
from cdvkit.export import export_run, reference_entries
from cdvkit.store import RunStore
from eval_helpers import build_run

# The reference's output for two searched questions, one it could not search (already failed)
# and one it never reached. Choices of an example are shuffled; ground truth is the choice text.
REFERENCE = [
    {
        "question": "Which planet is known as the Red Planet?",
        "choices": ["Venus", "Mars", "Jupiter", "Saturn"],
        "answer": "Mars",
        "source": "MMLU",
        "subject": "astronomy",
        "good_questions": [
            {
                "ori_question": "Which planet is known as the Red Planet?",
                "question": "Venus glows at dusk. Which planet is known as the Red Planet?",
                "choices": ["Jupiter", "Venus", "Saturn", "Mars"],
                "ground_truth": "Mars",
                "rate": 0.0,
            },
            {
                "ori_question": "Which planet is known as the Red Planet?",
                "question": "Which planet is known as the Red Planet? Jupiter has a red spot.",
                "choices": ["Mars", "Saturn", "Jupiter", "Venus"],
                "ground_truth": "Mars",
                "rate": 0.0,
            },
        ],
    },
    {
        "question": "What is 2 + 2?",
        "choices": ["3", "4", "5"],
        "answer": "4",
        "good_questions": [
            {
                "ori_question": "What is 2 + 2?",
                "question": "What is 2 + 2?",
                "choices": ["3", "4", "5"],
                "ground_truth": "4",
                "rate": 0,
            }
        ],
    },
    {"question": "Not reached yet?", "choices": ["a", "b"], "answer": "a"},
    {
        "question": "Searched, none found?",
        "choices": ["a", "b"],
        "answer": "b",
        "good_questions": [],
    },
]


def test_reference_import_reads_text_answers_and_skips_non_examples(tmp_path):
    path = tmp_path / "enhanced" / "gpt-4o-mini" / "MMLU_enhanced.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(REFERENCE, indent=4))
    es = load_examples_file(path)
    assert es.kind == "reference" and es.label == "gpt-4o-mini"
    assert len(es.items) == 1
    item = es.items[0]
    assert item.dataset == "MMLU"
    assert item.original.answer == 1  # "Mars" in the original order
    assert [v.answer for v in item.examples] == [3, 0]  # "Mars" in each shuffled order
    assert item.examples[0].choices == ("Jupiter", "Venus", "Saturn", "Mars")
    assert "Venus glows" in item.examples[0].question
    assert len(es.skipped) == 3
    reasons = " | ".join(es.skipped)
    assert "row 2: no CDV example, question skipped" in reasons  # the original itself
    assert "row 3: not searched" in reasons
    assert "row 4: no CDV example" in reasons
    # Without a source field the dataset comes from the reference's file name.
    items, _ = items_from_reference([{**REFERENCE[0], "source": None}], dataset="MMLU")
    assert items[0].dataset == "MMLU"
    # A label given explicitly wins; elsewhere the file name is the label.
    assert load_examples_file(path, "mini").label == "mini"
    plain = tmp_path / "out.json"
    plain.write_text(json.dumps(REFERENCE))
    assert load_examples_file(plain).label == "out"


def test_reference_import_rejects_bad_ground_truth_and_unknown_files(tmp_path):
    bad = [
        dict(
            REFERENCE[0],
            good_questions=[dict(REFERENCE[0]["good_questions"][0], ground_truth="Pluto")],
        )
    ]
    items, skipped = items_from_reference(bad)
    assert items == [] and any("ground_truth" in s for s in skipped)
    weird = tmp_path / "weird.json"
    weird.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(ValueError, match="neither"):
        load_examples_file(weird)
    with pytest.raises(FileNotFoundError):
        load_examples_file(tmp_path / "missing.json")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import asyncio

    return asyncio.run(build_run(tmp_path_factory.mktemp("exp") / "run"))


def test_reference_export_round_trip(run_dir, tmp_path):
    out = export_run(run_dir, "reference", tmp_path / "ref.json")
    assert out.count == 3
    entries = json.loads(out.path.read_text())
    e = entries[0]
    assert e["answer"] == e["choices"][0] == "blue"  # text, as the reference writes it
    assert all(g["ground_truth"] == "blue" for g in e["good_questions"])
    with RunStore(run_dir, lock=False, readonly=True) as store:
        direct = from_store(store)
        assert reference_entries(store) == entries
    back = load_examples_file(out.path)
    assert [i.id for i in back.items] == [i.id for i in direct.items]
    assert [i.examples for i in back.items] == [
        tuple(
            v.__class__(f"example:{k}", v.question, v.choices, v.answer)
            for k, v in enumerate(i.examples)
        )
        for i in direct.items
    ]


async def test_reference_export_marks_failed_and_unsearched_like_the_reference(tmp_path):
    from cdvkit.data.question import Question
    from scripted_helpers import oracle_responder

    qs = [
        Question("easy", "What color is the sky on a clear day?", ("blue", "green"), 0, "t"),
        Question("hard", "What color is fresh snow?", ("white", "blue"), 0, "t"),
    ]

    def target(req, sample):
        if "snow" in req.mcq.question:  # always wrong: the original already fails
            return f"Answer: {'AB'[req.mcq.choices.index('blue')]}"
        return oracle_responder(qs)(req, sample)

    run = await build_run(tmp_path / "run", questions=qs, target=target)
    with RunStore(run) as store:
        store.add_questions([Question("later", "Not searched?", ("a", "b"), 0, "t")])
        entries = {e["id"]: e for e in reference_entries(store)}
    assert entries["hard"]["good_questions"] == [
        {
            "ori_question": "What color is fresh snow?",
            "question": "What color is fresh snow?",
            "choices": ["white", "blue"],
            "ground_truth": "white",
            "rate": 0,
        }
    ]
    assert "good_questions" not in entries["later"]
    assert entries["easy"]["good_questions"]


def test_jsonl_and_hf_exports(run_dir, tmp_path):
    import datasets

    res = export_run(run_dir, "jsonl", tmp_path / "ex.jsonl")
    rows = [json.loads(line) for line in res.path.read_text().splitlines()]
    assert res.count == len(rows) > 0
    assert all(r["target"] == "scripted/oracle" for r in rows)
    assert all(r["choices"][r["answer"]] == r["answer_text"] for r in rows)

    res = export_run(run_dir, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(res.path))
    assert len(ds) == len(rows)
    assert ds[0]["question"] == rows[0]["question"] and ds[0]["choices"] == rows[0]["choices"]
    assert ds.features["answer"].dtype == "int64"


async def test_hf_export_of_a_run_without_examples_keeps_its_schema(tmp_path):
    import datasets

    from eval_helpers import QUESTIONS
    from scripted_helpers import oracle_responder

    run = await build_run(tmp_path / "run", target=oracle_responder(QUESTIONS, fooled_at=99))
    res = export_run(run, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(res.path))
    assert len(ds) == 0 and "question" in ds.features


def test_unknown_format_is_refused(run_dir):
    with pytest.raises(ValueError, match="unknown export format"):
        export_run(run_dir, "parquet")


def test_lm_eval_task_folder(run_dir, tmp_path):
    import yaml

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv colors")
    names = sorted(p.name for p in res.files)
    assert names == [
        "cdv_colors_distracted.jsonl",
        "cdv_colors_distracted.yaml",
        "cdv_colors_original.jsonl",
        "cdv_colors_original.yaml",
    ]
    cfg = yaml.safe_load((res.path / "cdv_colors_distracted.yaml").read_text())
    assert cfg["task"] == "cdv_colors_distracted" and cfg["tag"] == ["cdv_colors"]
    assert cfg["dataset_path"] == "json" and cfg["output_type"] == "multiple_choice"
    assert cfg["test_split"] == "test"
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str(
        (res.path / "cdv_colors_distracted.jsonl").resolve()
    )
    assert (cfg["doc_to_text"], cfg["doc_to_choice"], cfg["doc_to_target"]) == (
        "prompt",
        "labels",
        "answer",
    )
    assert cfg["metric_list"][0]["metric"] == "acc"
    rows = [
        json.loads(x)
        for x in (res.path / "cdv_colors_distracted.jsonl").read_text().split("\n")
        if x
    ]
    assert len(rows) == 3  # first example per question by default
    assert rows[0]["prompt"].endswith("\nAnswer:") and rows[0]["labels"] == ["A", "B", "C", "D"]
    every = export_run(run_dir, "lm-eval", tmp_path / "all", task="x", all_examples=True)
    assert every.count > 3


def test_lm_eval_loads_the_task_through_its_own_task_manager(run_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv_colors")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    loaded = tm.load(["cdv_colors"])["tasks"]  # the tag runs both tasks
    assert set(loaded) == {"cdv_colors_original", "cdv_colors_distracted"}
    with RunStore(run_dir, lock=False, readonly=True) as store:
        first = {}
        for ex in store.examples():
            first.setdefault(ex["question_id"], ex)
    for name, task in loaded.items():
        docs = list(task.test_docs())
        assert len(docs) == 3
        doc = docs[0]
        ex = first[doc["id"]]
        q, choices, answer = (
            (ex["question"], ex["choices"], ex["answer"])
            if name.endswith("distracted")
            else (ex["original_question"], ex["original_choices"], ex["original_answer"])
        )
        text = task.doc_to_text(doc)
        assert text.startswith(q) and text.endswith("Answer:")
        assert task.doc_to_choice(doc) == ["A", "B", "C", "D"][: len(choices)]
        assert task.doc_to_target(doc) == answer
        assert task.OUTPUT_TYPE == "multiple_choice"
        # lm-eval builds one loglikelihood request per choice from it.
        task.build_all_requests(rank=0, world_size=1)
        assert len(task.instances) == sum(len(d["choices"]) for d in docs)


def test_lm_eval_scores_the_exported_task_end_to_end(run_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.api.model import LM
    from lm_eval.evaluator import evaluate as lm_evaluate
    from lm_eval.tasks import TaskManager

    class AlwaysA(LM):
        """Prefers the continuation ' A' everywhere: its accuracy is the share of A answers."""

        def loglikelihood(self, requests):
            return [(0.0 if r.args[1].strip() == "A" else -5.0, False) for r in requests]

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            raise NotImplementedError

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv_e2e")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    out = lm_evaluate(
        lm=AlwaysA(), task_dict=tm.load(["cdv_e2e"]), bootstrap_iters=0, log_samples=False
    )["results"]
    for variant in ("original", "distracted"):
        rows = [json.loads(x) for x in (res.path / f"cdv_e2e_{variant}.jsonl").open()]
        expected = sum(r["answer"] == 0 for r in rows) / len(rows)
        assert out[f"cdv_e2e_{variant}"]["acc,none"] == pytest.approx(expected)
