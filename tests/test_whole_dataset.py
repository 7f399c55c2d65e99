"""`cdv evaluate` beyond the paired numbers, on a hand-built world with hand-computed outcomes
(tests/eval_helpers.py: WORLD, EVALUATED): accuracy on every question of the dataset, the order
control, `--by subject`, the "by construction" mark, `--preset paper` and its table, examples
files with their dataset, and rewrite baselines side by side with a CDV run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.evaluation import EvalSettings, from_store, load_evaluation
from cdvkit.evaluation.defenses import resolve_defense
from cdvkit.evaluation.items import ORIGINAL, Variant
from cdvkit.evaluation.settings import eval_key
from cdvkit.evaluation.stats import column_bootstrap
from cdvkit.export import export_reference
from cdvkit.store import RunStore
from eval_helpers import WORLD, build_world, register_world, world_node
from scripted_helpers import MARK, write_questions

runner = CliRunner()
EVAL, TARGET = "scripted/weval", "scripted/wtarget"


@pytest.fixture
def world(tmp_path: Path) -> Path:
    register_world()
    return build_world(tmp_path / "run")


def evaluate_json(*args: str) -> dict:
    res = runner.invoke(app, ["evaluate", *args, "--bootstrap", "200", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["evaluations"][0]


def calls_by_role(run_dir: Path) -> dict[str, int]:
    with RunStore(run_dir, readonly=True, lock=False) as store:
        return {r: u["calls"] for r, u in store.usage_by_role("evaluate").items()}


# --- every question, the order control, by construction -----------------------------------------


def test_every_question_order_control_and_by_construction(world: Path) -> None:
    entry = evaluate_json("--run", str(world), "--models", EVAL, TARGET)
    (per_model,) = entry["results"].values()
    r = per_model[EVAL]
    whole = r["whole"]["overall"]
    assert (whole["n"], whole["with_example"], whole["originally_failed"]) == (6, 3, 1)
    assert whole["original"] == pytest.approx(5 / 6)
    o = r["overall"]
    assert (o["n"], o["original"]) == (3, 1.0)
    assert (o["distracted"], o["drop"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    order = r["order"]["overall"]
    assert (order["n"], order["original"]) == (3, 1.0)
    assert order["reordered"] == pytest.approx(2 / 3)
    assert order["distracted"] == pytest.approx(1 / 3)
    assert order["order_drop"] == pytest.approx(1 / 3)
    assert order["distraction_drop"] == pytest.approx(1 / 3)
    assert order["drop"] == pytest.approx(order["order_drop"] + order["distraction_drop"])
    assert r["by_construction"] is False and r["paper"] is None
    # The run's target under the run's own protocol: 0% on its examples by construction, and
    # every question but the one it failed right.
    t = per_model[TARGET]
    assert t["by_construction"] is True and t["overall"]["distracted"] == 0.0
    assert t["whole"]["overall"]["original"] == pytest.approx(5 / 6)
    # Per model: 6 originals, 3 examples, 3 originals in their example's order.
    assert entry["answers"] == {"total": 24, "cached": 0}
    assert calls_by_role(world)["eval"] == 24
    assert entry["settings"]["order_control"] is True
    stored = load_evaluation(world)["evaluations"]["none"]
    assert stored["results"] == entry["results"]

    # The terminal shows the same numbers, the order split and the mark; all from the store.
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(world), "--models", EVAL, TARGET, "--bootstrap", "200"],
        env={"COLUMNS": "300"},
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert "all 83.3%" in out and "100.0% → 33.3%" in out and "drop 66.7%" in out
    assert "100.0% → 0.0%*" in out and "* by construction: scripted/wtarget" in out
    assert "order 33.3%" in out and "order 0.0%" in out
    assert "24 answers, 24 from the store, 0 paid calls" in out


def test_order_control_off_and_another_protocol_is_no_construction(world: Path) -> None:
    entry = evaluate_json(
        "--run", str(world), "--models", EVAL, TARGET, "--no-order-control", "--samples", "1"
    )
    (per_model,) = entry["results"].values()
    assert per_model[EVAL]["order"] is None and entry["answers"]["total"] == 18
    assert per_model[EVAL]["whole"]["overall"]["original"] == pytest.approx(5 / 6)
    # One sample is not the protocol the run searched under: nothing is true by construction.
    assert per_model[TARGET]["by_construction"] is False
    cot = evaluate_json("--run", str(world), "--models", TARGET, "--defense", "cot")
    assert next(iter(cot["results"].values()))[TARGET]["by_construction"] is False


def test_by_subject(world: Path) -> None:
    entry = evaluate_json("--run", str(world), "--models", EVAL, "--by", "subject")
    r = entry["results"][TARGET][EVAL]
    assert entry["settings"]["by"] == "subject"
    whole = r["whole"]["by_subject"]
    assert whole["space"]["original"] == pytest.approx(2 / 3) and whole["space"]["n"] == 3
    assert whole["nature"]["original"] == 1.0 and whole["nature"]["originally_failed"] == 1
    paired = r["by_subject"]
    assert (paired["space"]["n"], paired["space"]["distracted"]) == (1, 0.0)
    assert (paired["nature"]["n"], paired["nature"]["distracted"]) == (2, 0.5)
    assert r["order"]["by_subject"]["nature"]["reordered"] == 0.5
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(world), "--models", EVAL, "--by", "subject", "-q"],
        env={"COLUMNS": "300"},
    )
    assert res.exit_code == 0, res.output
    assert "subject" in res.output and "space" in res.output and "nature" in res.output
    bad = runner.invoke(app, ["evaluate", "--run", str(world), "--models", EVAL, "--by", "x"])
    assert bad.exit_code == 2 and "--by must be one of dataset, subject" in bad.output


# --- the paper's numbers ---------------------------------------------------------------------


def test_paper_preset_numbers_table_and_report(world: Path, tmp_path: Path) -> None:
    # The extractor is the run's own (scripted/wext), on every answer.
    entry = evaluate_json("--run", str(world), "--models", EVAL, "--preset", "paper")
    st = entry["settings"]
    assert (st["samples"], st["temperature"], st["prompt"]) == (1, 0.0001, "paper")
    assert st["always_extract"] is True and st["preset"] == "paper"
    assert st["extractor"] == "scripted/wext"
    assert "the extractor reads every reply" in st["protocol"]
    paper = entry["results"][TARGET][EVAL]["paper"]["overall"]
    assert (paper["n_original"], paper["n_enhanced"], paper["originally_failed"]) == (6, 4, 1)
    assert paper["original"] == pytest.approx(5 / 6)
    assert paper["enhanced"] == 0.5
    assert paper["drop"] == pytest.approx(5 / 6 - 1 / 2)
    assert paper["original_ci"] and paper["enhanced_ci"] and paper["drop_ci"]
    # One answer per question form, and the extractor once on each of them.
    calls = calls_by_role(world)
    assert calls["eval"] == 12 and calls["extractor"] == 12
    with RunStore(world, readonly=True, lock=False) as store:
        answers = [json.loads(r[0]) for r in store.db.execute("SELECT data FROM evaluations")]
    assert len(answers) == 12 and all(len(a["outputs"]["answers"]) == 1 for a in answers)

    res = runner.invoke(
        app,
        ["evaluate", "--run", str(world), "--models", EVAL, "--preset", "paper", "--bootstrap",
         "200"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "The paper's numbers" in res.output
    assert "83.3% → 50.0%" in res.output and "n=6→4" in res.output
    assert "1 orig. failed" in res.output and "drop 33.3%" in res.output

    # The paper's entry sits beside cdvkit's own; the report shows the paper's table.
    evaluate_json("--run", str(world), "--models", EVAL)
    saved = load_evaluation(world)["evaluations"]
    assert list(saved) == ["none (paper preset)", "none"]
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(world), "-o", str(report)])
    assert res.exit_code == 0, res.output
    html = report.read_text()
    assert "The paper&#x27;s table" in html or "The paper's table" in html
    assert "(n=4, 1 originally failed)" in html and "Order control" in html
    assert "Defenses side by side" not in html  # two protocols, not two defenses
    md = tmp_path / "r.md"
    assert (
        runner.invoke(app, ["report", str(world), "--format", "md", "-o", str(md)]).exit_code == 0
    )
    assert "The paper's table" in md.read_text()


def test_paper_preset_needs_an_extractor_and_writes_nothing_without_one(tmp_path: Path) -> None:
    register_world()
    run = build_world(tmp_path / "run")
    with RunStore(run) as store:
        cfg = store.get_config()
        cfg.pop("extractor")
        store.set_config(cfg)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(run), "--models", EVAL, "--preset", "paper", "--out", str(out)],
    )
    assert res.exit_code == 2
    assert "--preset paper reads every answer with an extractor" in " ".join(res.output.split())
    assert not out.exists() and not (run / "evaluation.json").exists()
    # Named on the command line, it is used.
    entry = evaluate_json(
        "--run", str(run), "--models", EVAL, "--preset", "paper", "--extractor", "scripted/wext",
        "--out", str(out),
    )  # fmt: skip
    assert entry["results"][TARGET][EVAL]["paper"]["overall"]["enhanced"] == 0.5
    bad = runner.invoke(app, ["evaluate", "--run", str(run), "--models", EVAL, "--preset", "x"])
    assert bad.exit_code == 2 and "--preset must be one of paper, not 'x'" in bad.output


# --- examples files: the reference's and cdvkit's JSONL with --data ----------------------------


def test_examples_files_know_every_question(world: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.json"
    with RunStore(world, readonly=True, lock=False) as store:
        export_reference(store, ref)
        store.export_jsonl(tmp_path / "ex.jsonl")
    data = write_questions(tmp_path / "world.jsonl", WORLD)

    # The reference file lists every question, the originally failed one as its own example.
    entry = evaluate_json(
        "--examples", str(ref), "--models", EVAL, "--preset", "paper",
        "--extractor", "scripted/wext", "--out", str(tmp_path / "e1"),
    )  # fmt: skip
    paper = next(iter(entry["results"].values()))[EVAL]["paper"]["overall"]
    assert (paper["n_original"], paper["n_enhanced"], paper["originally_failed"]) == (6, 4, 1)
    assert (paper["original"], paper["enhanced"]) == (pytest.approx(5 / 6), 0.5)

    # cdvkit's JSONL holds only the examples: --preset paper needs the dataset behind them.
    res = runner.invoke(
        app,
        ["evaluate", "--examples", str(tmp_path / "ex.jsonl"), "--models", EVAL, "--preset",
         "paper", "--extractor", "scripted/wext", "--out", str(tmp_path / "e2")],
    )  # fmt: skip
    assert res.exit_code == 2 and "give --data" in " ".join(res.output.split())
    assert not (tmp_path / "e2").exists()
    plain = evaluate_json(
        "--examples", str(tmp_path / "ex.jsonl"), "--models", EVAL, "--out", str(tmp_path / "e3")
    )
    assert next(iter(plain["results"].values()))[EVAL]["whole"] is None
    # With --data every question counts (matched by text); a file does not say which the
    # target failed, so the paper's enhanced accuracy is over the three examples only.
    entry = evaluate_json(
        "--examples", str(tmp_path / "ex.jsonl"), "--data", str(data), "--models", EVAL,
        "--preset", "paper", "--extractor", "scripted/wext", "--out", str(tmp_path / "e4"),
    )  # fmt: skip
    r = next(iter(entry["results"].values()))[EVAL]
    assert r["whole"]["overall"]["n"] == 6
    assert r["paper"]["overall"]["original"] == pytest.approx(5 / 6)
    assert r["paper"]["overall"]["enhanced"] == pytest.approx(1 / 3)
    assert entry["sources"][0]["dataset_questions"] == 6


# --- rewrite baselines ----------------------------------------------------------------------


def build_baseline(run_dir: Path) -> Path:
    """A `paraphrase-long` run: one rewrite per question, kept whether or not it fooled the
    target (open), after a rewrite the constraints dropped (never used)."""
    build_world(run_dir, proposer="paraphrase-long", status="open")
    with RunStore(run_dir) as store:
        for q in WORLD:
            if q.id in ("w1", "w2", "w3"):
                store.clear_nodes(q.id)
                store.save_node(q.id, world_node(q, "r", 1, "root", q.question, q.choices))
                dropped = world_node(q, "r.9", 2, "rejected", "Too short.", q.choices)
                store.save_node(q.id, dropped)
                text = f"{MARK} in other, longer words: {q.question}"
                node = world_node(q, "r.0", 2, "open", text, tuple(reversed(q.choices)))
                store.save_node(q.id, node)
    return run_dir


def test_a_baseline_uses_every_rewrite_and_sits_beside_the_cdv_run(world: Path, tmp_path: Path):
    base = build_baseline(tmp_path / "baseline")
    with RunStore(base, readonly=True, lock=False) as store:
        es = from_store(store)
    assert es.baseline == "paraphrase-long" and es.label == f"{TARGET} · paraphrase-long"
    assert [i.id for i in es.items] == ["w1", "w2", "w3"]
    assert all(i.examples[0].question.startswith(MARK + " in other") for i in es.items)
    assert {i.id for i in es.others} == {"w4", "w5", "w6"}

    entry = evaluate_json("--run", str(world), "--run", str(base), "--models", EVAL, TARGET)
    assert list(entry["results"]) == [TARGET, f"{TARGET} · paraphrase-long"]
    cdv, rewrite = entry["results"].values()
    assert cdv[EVAL]["overall"]["distracted"] == rewrite[EVAL]["overall"]["distracted"]
    # A rewrite was kept whether or not it fooled the target: nothing by construction there.
    assert cdv[TARGET]["by_construction"] and not rewrite[TARGET]["by_construction"]
    # Both runs hold the same questions: their originals (and orders) are asked once.
    per_model = 6 + 3 + 3 + 3  # originals, CDV examples, rewrites, orders
    assert calls_by_role(world)["eval"] == 2 * per_model
    assert entry["answers"]["total"] == 2 * 2 * 12


# --- keys, statistics, older files -----------------------------------------------------------


def test_answer_keys_of_the_default_protocol_are_unchanged() -> None:
    import hashlib

    v = Variant(ORIGINAL, "Q?", ("a", "b"), 0)
    d = resolve_defense("none")
    payload = {
        "model": "m",
        "item": "i",
        "variant": "original",
        "question": "Q?",
        "choices": ["a", "b"],
        "answer": 0,
        "defense": d.text,
        "protocol": {
            "scoring": "sample", "samples": 5, "temperature": 0.01, "prompt": "letter",
            "threshold": None, "batch_samples": True, "sequential": False,
            "always_extract": False,
        },
        "extractor": None,
    }  # fmt: skip
    before = "eval:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert eval_key("m", "i", v, d, EvalSettings()) == before
    assert eval_key("m", "i", v, d, EvalSettings(always_extract=True)) != before


def test_column_bootstrap_pairs_a_subset_with_the_whole() -> None:
    rows = [[1.0, 0.0], [1.0, None], [0.0, 1.0], [1.0, None]]
    c = column_bootstrap(rows, 2, differences=[(0, 1)], resamples=500, seed=1)
    assert c.n == [4, 2] and c.means == [0.75, 0.5]
    assert c.diffs[(0, 1)][0] == pytest.approx(0.25)
    lo, hi = c.cis[0]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0
    again = column_bootstrap(rows, 2, differences=[(0, 1)], resamples=500, seed=1)
    assert again == c  # seeded
    empty = column_bootstrap([], 2, differences=[(0, 1)])
    assert empty.means == [None, None] and empty.diffs[(0, 1)] == (None, None)


def test_an_entry_from_before_these_numbers_still_renders(world: Path, tmp_path: Path) -> None:
    from cdvkit.reporting import collect, render_html, render_markdown

    evaluate_json("--run", str(world), "--models", EVAL)
    path = world / "evaluation.json"
    data = json.loads(path.read_text())
    for entry in data["evaluations"].values():
        for k in ("always_extract", "order_control", "by", "preset"):
            entry["settings"].pop(k)
        for per_model in entry["results"].values():
            for r in per_model.values():
                for k in ("by_subject", "whole", "order", "paper", "by_construction"):
                    r.pop(k)
    path.write_text(json.dumps(data))
    report = collect(world)
    html, md = render_html(report), render_markdown(report)
    assert "with an example" in html and "Order control" not in html
    assert "| – |" in md  # no accuracy over every question in an older file


def test_the_python_api_takes_the_same_options(world: Path) -> None:
    import cdvkit

    ev = cdvkit.evaluate(
        [EVAL], run=world, preset="paper", by="subject", order_control=False, bootstrap=100
    )
    (entry,) = ev.entries
    r = entry["results"][TARGET][EVAL]
    assert r["order"] is None and set(r["paper"]["by_subject"]) == {"space", "nature"}
    # space: w1 wrong on its example; nature: w2 wrong, w3 right, w5 (failed) as itself right.
    assert r["paper"]["by_subject"]["space"]["enhanced"] == 0.0
    assert r["paper"]["by_subject"]["nature"]["enhanced"] == pytest.approx(2 / 3)
    assert r["paper"]["overall"]["enhanced"] == 0.5
