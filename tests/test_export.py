"""Exports (jsonl, hf, reference, lm-eval) and the reference-format import."""

from __future__ import annotations

import json
import logging

import pytest

from cdvkit.evaluation import from_store, items_from_reference, load_examples_file
from cdvkit.export import export_run, reference_entries
from cdvkit.store import RunStore
from eval_helpers import build_run
from lm_eval_helpers import jsonl_rows, load_task_yaml

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
            # Marked, so no reader takes it for a CDV example; the reference's ignores the key.
            "originally_failed": True,
        }
    ]
    assert not any(g.get("originally_failed") for g in entries["easy"]["good_questions"])
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


# --- lm-eval, loglik mode: lm-eval's own conventions --------------------------------------------
def test_lm_eval_loglik_task_folder(run_dir, tmp_path):
    import yaml

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv colors", mode="loglik")
    names = sorted(p.name for p in res.files)
    assert names == [
        "README.md",
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
    readme = (res.path / "README.md").read_text()
    assert "`loglik`" in readme and "not with `cdv evaluate`" in readme
    assert "--protocol exact" in readme  # the nearest cdvkit number
    every = export_run(
        run_dir, "lm-eval", tmp_path / "all", task="x", all_examples=True, mode="loglik"
    )
    assert every.count > 3


def test_lm_eval_loads_the_loglik_task_through_its_own_task_manager(run_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv_colors", mode="loglik")
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


def test_lm_eval_scores_the_loglik_task_end_to_end(run_dir, tmp_path):
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

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv_e2e", mode="loglik")
    tm = TaskManager(include_path=str(res.path), include_defaults=False)
    out = lm_evaluate(
        lm=AlwaysA(), task_dict=tm.load(["cdv_e2e"]), bootstrap_iters=0, log_samples=False
    )["results"]
    for variant in ("original", "distracted"):
        rows = [json.loads(x) for x in (res.path / f"cdv_e2e_{variant}.jsonl").open()]
        expected = sum(r["answer"] == 0 for r in rows) / len(rows)
        assert out[f"cdv_e2e_{variant}"]["acc,none"] == pytest.approx(expected)


def test_an_unknown_lm_eval_mode_is_refused_before_anything_is_written(run_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown lm-eval mode 'greedy'"):
        export_run(run_dir, "lm-eval", tmp_path / "task", mode="greedy")
    assert not (tmp_path / "task").exists()


# --- lm-eval, protocol mode (the default): the run's protocol itself ----------------------------
class WithSettings:
    """A run store whose protocol settings read otherwise (another prompt, samples, scoring)."""

    def __init__(self, store: RunStore, **settings) -> None:
        self._store, self._config = store, {**(store.get_config() or {}), **settings}

    def get_config(self) -> dict:
        return self._config

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def test_lm_eval_protocol_task_folder(run_dir, tmp_path):
    from cdvkit.prompts import target_messages, target_request

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="cdv colors")
    assert sorted(p.name for p in res.files) == [
        "README.md",
        "cdv_colors_distracted.jsonl",
        "cdv_colors_distracted.yaml",
        "cdv_colors_original.jsonl",
        "cdv_colors_original.yaml",
        "protocol.json",
        "utils.py",
    ]
    with RunStore(run_dir, lock=False, readonly=True) as store:
        cfg_run = store.get_config()
        first = {}
        for ex in store.examples():
            first.setdefault(ex["question_id"], ex)
    assert cfg_run["samples"] == 2 and cfg_run["target_prompt"] == "letter"
    cap = target_request("q", ["a", "b"], temperature=0.01).max_tokens
    for variant in ("original", "distracted"):
        cfg = load_task_yaml(res.path / f"cdv_colors_{variant}.yaml")
        assert cfg["task"] == f"cdv_colors_{variant}" and cfg["tag"] == ["cdv_colors"]
        assert cfg["output_type"] == "generate_until"
        assert (cfg["description"], cfg["doc_to_text"]) == ("{{system}}", "prompt")
        assert cfg["repeats"] == 2  # the run's samples
        assert cfg["generation_kwargs"] == {
            "until": [],  # the whole step-by-step reply, as the protocol reads it
            "do_sample": True,
            "temperature": cfg_run["temperature"],
            "max_gen_toks": cap,
        }
        (pipeline,) = cfg["filter_list"]
        assert pipeline["filter"] == [{"function": "take_first_k", "k": 2}]  # every answer
        assert cfg["process_results"] == "!function utils.process_results"
        assert cfg["metric_list"] == [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True}
        ]
        rows = jsonl_rows(res.path / f"cdv_colors_{variant}.jsonl")
        assert [r["id"] for r in rows] == ["sky", "grass", "snow"]
        for r in rows:
            ex = first[r["id"]]
            q, choices, answer = (
                (ex["question"], ex["choices"], ex["answer"])
                if variant == "distracted"
                else (ex["original_question"], ex["original_choices"], ex["original_answer"])
            )
            assert (r["question"], r["choices"], r["answer"]) == (q, choices, answer)
            system, user = target_messages(q, choices)
            assert (r["system"], r["prompt"]) == (system["content"], user["content"])
    settings = json.loads((res.path / "protocol.json").read_text())
    assert {k: settings[k] for k in ("samples", "temperature", "target_prompt")} == {
        k: cfg_run[k] for k in ("samples", "temperature", "target_prompt")
    }
    assert "from cdvkit.export.lm_eval_score import" in (res.path / "utils.py").read_text()
    readme = (res.path / "README.md").read_text()
    assert "`cdv_colors_original`: accuracy on the original questions" in readme
    assert "n=2, T=0.01, letter prompt, right if any answer is right" in readme
    assert f"`cdv evaluate --run {run_dir} --models M`" in readme
    assert "`overall.original`" in readme and "`overall.distracted`" in readme
    assert "--apply_chat_template" in readme and "pip install cdvkit" in readme


def test_the_protocol_settings_file_defines_the_runs_protocol(run_dir):
    from cdvkit.export.lm_eval_protocol import protocol_settings
    from cdvkit.protocol import protocol_from_config

    # protocol.json holds only some of the run's settings: they must be all its protocol reads.
    with RunStore(run_dir, lock=False, readonly=True) as store:
        cfg = store.get_config()
    assert protocol_from_config(protocol_settings(cfg)) == protocol_from_config(cfg)


def test_lm_eval_asks_the_protocols_messages(run_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from cdvkit.prompts import target_messages
    from lm_eval_helpers import chat_lm, lm_eval_results

    res = export_run(run_dir, "lm-eval", tmp_path / "task", task="asked")
    lm = chat_lm(reply=lambda messages, sample: "Answer: A")
    lm_eval_results(res.path, "asked", lm)
    with RunStore(run_dir, lock=False, readonly=True) as store:
        items = from_store(store).items
    sent = [v for i in items for v in i.variants(False)]
    expected = sorted(json.dumps(target_messages(v.question, v.choices)) for v in sent)
    # Every question twice (repeats = the run's 2 samples), as exactly the chat cdvkit sends.
    assert sorted(json.dumps(m) for m, _ in lm.seen) == sorted(expected * 2)
    assert {json.dumps(s, sort_keys=True) for _, s in lm.seen} == {
        json.dumps(
            {
                "until": [],
                "do_sample": True,
                "temperature": 0.01,
                "max_gen_toks": s["max_gen_toks"],
            },
            sort_keys=True,
        )
        for _, s in lm.seen[:1]
    }


# What the scripted model answers, per question and version, sample by sample (cycled): right,
# wrong, or nothing readable. Under the protocol (right if any answer is right) the originals
# score 2/3 (grass never answers) and the first examples 1/3; lm-eval's default filter would
# keep each first answer only and score them 1/3 and 0. The run has 3, 2 and 2 examples of sky,
# grass and snow; sky's later ones are answered right, so over every example a question weighs
# (2/3 + 1 + 0) / 3 = 5/9 (cdv evaluate --all-examples), an example 4/7.
PLAN = {
    ("sky", "original"): ["wrong", "right"],
    ("sky", "distracted"): ["wrong", "wrong"],
    ("sky", "later"): ["right", "wrong"],
    ("grass", "original"): ["mute", "mute"],
    ("grass", "distracted"): ["wrong", "right"],
    ("snow", "original"): ["right", "right"],
    ("snow", "distracted"): ["mute", "wrong"],
}


def planned_replies(store, prompt: str, plan=PLAN):
    """The script answering every question of the run as ``plan`` says, in ``prompt``'s form
    (a letter, or the paper's choice text); found by the user message cdvkit renders for it."""
    from cdvkit.data.question import LETTERS
    from cdvkit.prompts import target_messages
    from lm_eval_helpers import by_user_message

    table = {}
    for item in from_store(store).items:
        for n, v in enumerate(item.variants(True)):
            user = target_messages(v.question, v.choices, prompt=prompt)[-1]["content"]
            version = ["original", "distracted"][n] if n < 2 else "later"
            steps = plan.get((item.id, version)) or plan[(item.id, "distracted")]
            table[user] = (steps, v)
    find = by_user_message(table)

    def reply(messages, sample: int) -> str:
        steps, v = find(messages)
        step = steps[sample % len(steps)]
        if step == "mute":
            return "I would rather not say."
        pick = (
            v.answer if step == "right" else next(i for i in range(len(v.choices)) if i != v.answer)
        )
        if prompt == "paper":
            return f"Thinking it through.\nThe final answer is: '{v.choices[pick]}'"
        return f"Let me think step by step.\nAnswer: {LETTERS[pick]}"

    return reply


@pytest.mark.parametrize(
    ("prompt", "samples", "all_examples", "expected"),
    [
        ("letter", 2, False, (2 / 3, 1 / 3)),
        ("paper", 3, False, (2 / 3, 1 / 3)),
        ("letter", 2, True, (2 / 3, 5 / 9)),
    ],
)
async def test_lm_eval_protocol_task_reproduces_cdv_evaluate(
    run_dir, tmp_path, prompt, samples, all_examples, expected
):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from cdvkit.evaluation import EvalSettings
    from cdvkit.export import export_lm_eval
    from lm_eval_helpers import cdv_evaluate, chat_lm, lm_eval_results

    with RunStore(run_dir, lock=False, readonly=True) as real:
        store = WithSettings(real, target_prompt=prompt, samples=samples)
        res = export_lm_eval(store, tmp_path / "task", task="twin", all_examples=all_examples)
        reply = planned_replies(store, prompt)
        settings = EvalSettings(
            samples=samples, prompt=prompt, all_examples=all_examples, resamples=100
        )
        cdv = await cdv_evaluate(store, settings, reply=reply)
    out = lm_eval_results(res.path, "twin", chat_lm(reply=reply))
    assert out["twin_original"]["acc,protocol"] == pytest.approx(cdv["original"])
    assert out["twin_distracted"]["acc,protocol"] == pytest.approx(cdv["distracted"])
    assert (cdv["original"], cdv["distracted"]) == pytest.approx(expected)  # by hand: PLAN


async def test_lm_eval_exact_protocol_task_reproduces_cdv_evaluate(run_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")
    from cdvkit.evaluation import EvalSettings
    from cdvkit.export import export_lm_eval
    from cdvkit.prompts import target_messages
    from lm_eval_helpers import by_user_message, cdv_evaluate, chat_lm, lm_eval_results

    # (P(right), P(the first wrong choice)) per question and version; with threshold 0.4 a
    # question is wrong only when a wrong choice is likelier AND P(right) < 0.4:
    # originals: sky, grass right, snow wrong (0.3); examples: sky wrong, grass right (0.45,
    # though a wrong choice is likelier), snow right.
    plan = {
        ("sky", "original"): (0.7, 0.1),
        ("sky", "distracted"): (0.2, 0.7),
        ("grass", "original"): (0.8, 0.1),
        ("grass", "distracted"): (0.45, 0.5),
        ("snow", "original"): (0.3, 0.6),
        ("snow", "distracted"): (0.9, 0.05),
    }
    with RunStore(run_dir, lock=False, readonly=True) as real:
        store = WithSettings(real, protocol="exact", threshold=0.4)
        res = export_lm_eval(store, tmp_path / "task", task="exact")
        table = {}
        for item in from_store(store).items:
            for n, v in enumerate(item.variants(True)):
                right, wrong = plan[(item.id, "original" if n == 0 else "distracted")]
                first_wrong = next(i for i in range(len(v.choices)) if i != v.answer)
                rest = (1 - right - wrong) / (len(v.choices) - 2)
                probs = [rest] * len(v.choices)
                probs[v.answer], probs[first_wrong] = right, wrong
                table[target_messages(v.question, v.choices)[-1]["content"]] = probs
        probs = by_user_message(table)
        settings = EvalSettings(scoring="exact", threshold=0.4, resamples=100)
        cdv = await cdv_evaluate(store, settings, probs=probs)
    cfg = load_task_yaml(res.path / "exact_original.yaml")
    assert cfg["output_type"] == "multiple_choice" and cfg["gen_prefix"] == "Answer:"
    assert jsonl_rows(res.path / "exact_original.jsonl")[0]["labels"] == ["A", "B", "C", "D"]
    out = lm_eval_results(res.path, "exact", chat_lm(probs=probs))
    assert out["exact_original"]["acc,none"] == pytest.approx(cdv["original"])
    assert out["exact_distracted"]["acc,none"] == pytest.approx(cdv["distracted"])
    assert (cdv["original"], cdv["distracted"]) == pytest.approx((2 / 3, 2 / 3))


def test_cdv_export_takes_the_lm_eval_mode(run_dir, tmp_path):
    from typer.testing import CliRunner

    from cdvkit.cli.app import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["export", str(run_dir), "--format", "lm-eval", "-o", str(tmp_path / "p")]
    )
    assert res.exit_code == 0, res.output
    assert "--apply_chat_template" in res.output and "README.md" in res.output
    assert (
        load_task_yaml(tmp_path / "p" / "cdv_run_original.yaml")["output_type"] == "generate_until"
    )
    args = ["export", str(run_dir), "--format", "lm-eval", "--lm-eval-mode", "loglik"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "l")])
    assert res.exit_code == 0, res.output
    assert "--apply_chat_template" not in res.output
    assert (
        load_task_yaml(tmp_path / "l" / "cdv_run_original.yaml")["output_type"] == "multiple_choice"
    )
    args = ["export", str(run_dir), "--format", "lm-eval", "--lm-eval-mode", "greedy"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "g")])
    assert res.exit_code == 2 and "unknown lm-eval mode 'greedy'" in res.output
    assert not (tmp_path / "g").exists()


def test_lm_eval_protocol_task_follows_the_runs_prompt_templates(run_dir, tmp_path):
    from cdvkit.export import export_lm_eval
    from cdvkit.export.lm_eval_score import Scorer
    from cdvkit.prompts import target_messages
    from cdvkit.protocol import protocol_from_config

    # A prompts file that asks for the letter under a JSON key: the export renders its words and
    # its utils.py reads its reply format (a plain "Answer: A" is then no answer).
    templates = {
        "target.letter": {
            "system": "Reply with JSON only.",
            "user": "Q: {question}\n{choices_lettered}",
            "reply": {"format": "json", "key": "answer", "answer": "letter"},
        }
    }
    with RunStore(run_dir, lock=False, readonly=True) as real:
        store = WithSettings(real, prompts=templates)
        res = export_lm_eval(store, tmp_path / "task", task="tpl")
        prompts = protocol_from_config(store.get_config()).prompts
    row = jsonl_rows(res.path / "tpl_original.jsonl")[0]
    system, user = target_messages(row["question"], row["choices"], prompts=prompts)
    assert (row["system"], row["prompt"]) == (system["content"], user["content"])
    assert row["system"] == "Reply with JSON only." and row["prompt"].startswith("Q: ")
    scorer = Scorer.from_file(res.path / "protocol.json")
    right, wrong = "ABCD"[row["answer"]], "ABCD"[row["answer"] - 1]
    both = [f'{{"answer": "{wrong}"}}', f'{{"answer": "{right}"}}']
    assert scorer.process_results(row, [both]) == {"acc": 1.0}  # one right answer of two
    assert scorer.process_results(row, [both[:1]]) == {"acc": 0.0}
    assert scorer.process_results(row, [[f'{{"answer": "{right}"}}']]) == {"acc": 1.0}
    assert scorer.process_results(row, [[f"Answer: {right}"]]) == {"acc": 0.0}
