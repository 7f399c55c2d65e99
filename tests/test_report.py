"""Reports: escaping of model text, contents with and without evaluation, Markdown, PNG, CLI."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cdvkit.data.question import Question
from cdvkit.evaluation import EvalSettings, evaluate, from_store, save_evaluation
from cdvkit.reporting import build_report, collect, render_html, render_markdown, write_pngs
from cdvkit.store import RunStore
from eval_helpers import (
    QUESTIONS,
    XSS_DISTRACTION,
    XSS_REPLY,
    build_run,
    make_run,
    register_models,
    xss_proposer,
    xss_target,
)
from scripted_helpers import oracle_responder, scripted

EVIL_SOURCE = "<script>alert('source')</script>"
XSS_QUESTIONS = [
    *QUESTIONS,
    Question("evil", "What color is coal <i>really</i>?", ("black", "white"), 0, EVIL_SOURCE),
]


def embedded_payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="cdv-data">(.*?)</script>', html, re.S)
    assert m, "the data block is missing"
    return json.loads(m.group(1))


@pytest.fixture
async def xss_run(tmp_path):
    run = await build_run(
        tmp_path / "run",
        questions=XSS_QUESTIONS,
        target=xss_target(XSS_QUESTIONS),
        proposer=xss_proposer,
    )
    models = {
        "scripted/oracle": scripted("oracle", xss_target(XSS_QUESTIONS)),
        "scripted/robust": scripted("robust", oracle_responder(XSS_QUESTIONS, fooled_at=99)),
    }
    with RunStore(run) as store:
        for defense in ("none", "ignore-irrelevant"):
            entry = await evaluate(
                [from_store(store)],
                list(models),
                store=store,
                defense=defense,
                backends=models,
                settings=EvalSettings(resamples=200),
            )
            save_evaluation(run, entry)
    return run


def test_model_text_is_never_markup_in_the_html(xss_run, tmp_path):
    path = build_report(xss_run, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    # The raw script tags from the target's replies, the proposer's distractions and a dataset
    # name never appear as markup, in any case.
    low = html.lower()
    assert "<script>alert" not in low
    assert XSS_REPLY not in html and XSS_DISTRACTION not in html
    assert "alert('distraction')</script>" not in html
    assert "<i>really</i>" not in html
    assert low.count("<script") == 2  # the data block and the page's own script
    assert low.count("</script") == 2
    # ...yet the text is all there, escaped, for the reader.
    payload = embedded_payload(html)
    replies = [a["reply"] for q in payload["questions"] for n in q["nodes"] for a in n["answers"]]
    assert any(XSS_REPLY in r for r in replies)
    distractions = [n["distraction"] for q in payload["questions"] for n in q["nodes"]]
    assert any(d and XSS_DISTRACTION in d for d in distractions)
    assert "&lt;script&gt;alert(&#x27;source&#x27;)&lt;/script&gt;" in html  # server-side table
    assert "innerHTML" not in html  # the script builds the DOM with textContent only


def test_html_is_self_contained(xss_run, tmp_path):
    html = build_report(xss_run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<link" not in html.lower() and "@import" not in html
    assert "default-src 'none'" in html  # CSP: the page may fetch nothing
    # Every part the issue asks for is in the one file.
    for needle in (
        "Defenses side by side",
        "Transfer: distracted accuracy",
        "Accuracy, examples found against scripted/oracle",
        "Cost per role",
        "only-success",
        "McNemar p",
    ):
        assert needle in html, needle
    assert html.count("<svg") >= 4


async def test_report_of_a_run_without_evaluation(tmp_path):
    run = await build_run(tmp_path / "run")
    data = collect(run)
    assert data["evaluations"] == []
    html = render_html(data)
    assert "has not been evaluated yet" in html
    payload = embedded_payload(html)
    assert [q["id"] for q in payload["questions"]] == [q.id for q in QUESTIONS]
    assert all(q["examples"] >= 1 for q in payload["questions"])
    good = [n for q in payload["questions"] for n in q["nodes"] if n["status"] == "good"]
    assert good and all(n["distraction"] in n["question"] for n in good)
    assert all(n["rate"] == 0.0 for n in good)
    md = render_markdown(data)
    assert "Not evaluated yet" in md and "## Questions with CDV examples (3)" in md
    assert write_pngs(data, tmp_path / "png")  # cost per role at least


def test_markdown_escapes_and_tabulates(xss_run):
    md = render_markdown(collect(xss_run))
    assert "<script" not in md.lower()
    assert "&lt;script&gt;" in md
    assert "### Defenses side by side" in md and "### Defense: ignore-irrelevant" in md
    rows = [line for line in md.splitlines() if line.startswith("| scripted/oracle | scripted/")]
    assert rows and all(line.count("|") >= 10 for line in rows)


def test_png_plots(xss_run, tmp_path):
    paths = write_pngs(collect(xss_run), tmp_path / "png")
    names = {p.name for p in paths}
    assert {"defenses.png", "cost-per-role.png", "transfer-distracted-none.png"} <= names
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- command line ---------------------------------------------------------------------------------
runner = CliRunner()


@pytest.fixture(scope="module")
def cli_app():
    from cdvkit.cli.app import app
    from cdvkit.cli.evaluate_cmd import register

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "evaluate" not in names:
        register(app)
    return app


def test_cli_evaluate_report_export(cli_app, tmp_path):
    register_models()
    run = make_run(tmp_path / "run")
    res = runner.invoke(
        cli_app,
        [
            "evaluate",
            "--run",
            str(run),
            "--models",
            "scripted/oracle",
            "scripted/robust",
            "--bootstrap",
            "200",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    entry = out["evaluations"][0]
    assert entry["models"] == ["scripted/oracle", "scripted/robust"]
    assert entry["transfer"]["drop"] == [[1.0, 0.0]]
    assert (run / "evaluation.json").is_file()

    # The human table, and a second defense added next to the first.
    res = runner.invoke(
        cli_app,
        [
            "evaluate",
            "--run",
            str(run),
            "--models",
            "scripted/oracle,scripted/robust",
            "--defense",
            "cot",
            "--bootstrap",
            "100",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "overall" in res.output and "evaluation.json" in res.output.replace("\n", "")
    saved = json.loads((run / "evaluation.json").read_text())
    assert list(saved["evaluations"]) == ["none", "cot"]

    res = runner.invoke(
        cli_app, ["report", str(run), "-o", str(tmp_path / "r.html"), "--png", str(tmp_path / "p")]
    )
    assert res.exit_code == 0, res.output
    assert "Defenses side by side" in (tmp_path / "r.html").read_text()
    assert (tmp_path / "p" / "defenses.png").is_file()
    res = runner.invoke(cli_app, ["report", str(run), "--format", "md"])
    assert res.exit_code == 0 and (run / "report.md").is_file()
    # The robust model's answers were paid by the evaluation: listed apart from the search's.
    md = (run / "report.md").read_text()
    with RunStore(run, readonly=True, lock=False) as store:
        search_calls, eval_calls = store.paid_calls("search"), store.paid_calls("evaluate")
    assert eval_calls > 0 and f"| paid model calls (search) | {search_calls} |" in md
    eval_table = md.split("Evaluation (cdv evaluate, counted apart)")[1].split("##")[0]
    assert "| eval |" in eval_table and "| target |" not in eval_table

    for fmt, name in (
        ("jsonl", "examples.jsonl"),
        ("reference", "reference.json"),
        ("lm-eval", "lm_eval_task"),
        ("hf", "hf_dataset"),
    ):
        res = runner.invoke(cli_app, ["export", str(run), "--format", fmt])
        assert res.exit_code == 0, res.output
        assert (run / name).exists()

    # Examples given as a file are evaluated into their own results folder.
    res = runner.invoke(
        cli_app,
        [
            "evaluate",
            "--examples",
            f"mine={run / 'reference.json'}",
            "--models",
            "scripted/robust",
            "--out",
            str(tmp_path / "ev"),
            "--bootstrap",
            "50",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(res.output)["evaluations"][0]
    assert entry["transfer"]["rows"] == ["mine"] and entry["transfer"]["distracted"] == [[1.0]]


def test_cli_errors_are_one_line(cli_app, tmp_path):
    register_models()
    run = make_run(tmp_path / "run")
    cases = [
        (["evaluate", "--run", str(run)], "give the models"),
        (["evaluate", "--models", "scripted/oracle"], "give the examples"),
        (["evaluate", "--run", str(tmp_path / "nope"), "--models", "scripted/oracle"], "no cdvkit"),
        (["evaluate", "--run", str(run), "--models", "oracle"], "provider/model"),
        (
            ["evaluate", "--run", str(run), "--models", "scripted/oracle", "--defense", "x"],
            "unknown defense",
        ),
        (
            ["evaluate", "--run", str(run), "--models", "scripted/oracle", "--protocol", "vote"],
            "--protocol must be one of sample, exact",
        ),
        (
            ["evaluate", "--run", str(run), "--models", "scripted/oracle", "--protocol", "exact"],
            "cannot evaluate scripted/oracle with --protocol exact",
        ),
        (["export", str(run), "--format", "csv"], "unknown export format"),
        (["report", str(run), "--format", "pdf"], "unknown report format"),
        (["report", str(tmp_path / "nope")], "no cdvkit run"),
    ]
    for args, message in cases:
        res = runner.invoke(cli_app, args)
        assert res.exit_code != 0, args
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output
