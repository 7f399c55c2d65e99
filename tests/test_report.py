"""Reports: escaping of model text, contents with and without evaluation, Markdown, PNG, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cdvkit.reporting
from cdvkit.data.question import Question
from cdvkit.evaluation import EvalSettings, evaluate, from_store, save_evaluation
from cdvkit.reporting import build_report, collect, render_html, render_markdown, svg, write_pngs
from cdvkit.reporting.html_gallery import verdicts_html
from cdvkit.reporting.markdown import md_text
from cdvkit.reporting.plots import plot_files
from cdvkit.search.engine import DEFERRED
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
from report_helpers import (
    EVAL,
    LONG,
    SAMPLED_REPLY,
    STACKED,
    TARGET,
    VERIFY_REPLY,
    evaluated_world,
    parse,
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
    # The first screen says so, with the command that measures the drop.
    headline = parse(html).by_id("headline")
    assert headline.find_all("table") == []
    assert "has not been evaluated yet" in headline.text()
    command = f"cdv evaluate --run {run} --models scripted/oracle"
    assert headline.find("pre", "cmd").text() == command
    searched = headline.find("p", "searched").text()
    assert searched.startswith("3 questions: 3 answered right undistracted and searched; found ")
    assert f"found {len(good)} CDV examples on 3 questions" in searched
    assert f"Search: {data['summary']['calls']} paid calls, USD 0.0000" in searched
    # The gallery is there all the same, one card per example.
    assert len(parse(html).by_id("gallery").find_all("article", "ex")) == len(good)
    md = render_markdown(data)
    assert "has not been evaluated yet" in md and f"```\n{command}\n```" in md
    assert f"## Examples ({len(good)})" in md
    assert md.index("## How much does each model drop?") < md.index("## Examples")
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
    out = res.output
    assert "CDV evaluation" in out and "scripted/robust" in out and "cot" in out
    assert "evaluation.json" in out.replace("\n", "")
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


# --- the first screen, the gallery, the Markdown summary (tests/report_helpers.py's world) ------
@pytest.fixture
def world(tmp_path):
    """WORLD evaluated by `cdv evaluate` (three models) and again with --preset paper."""
    return evaluated_world(tmp_path / "world")


def rows_of(table) -> list[list[str]]:
    return [
        [c.text() for c in tr.find_all() if c.tag in ("th", "td")] for tr in table.find_all("tr")
    ]


def good_nodes(run) -> list[tuple[str, str]]:
    with RunStore(run, readonly=True, lock=False) as store:
        return [(n["question_id"], n["path"]) for n in store.nodes(status="good")]


def test_the_first_screen_answers_how_much_each_model_drops(world):
    html = render_html(collect(world))
    # The headline first, then the gallery, the evaluation in full, the search, the trees.
    marks = ['id="headline"', 'id="gallery-section"', "<h2>Evaluation</h2>",
             "<h2>Search statistics</h2>", 'id="trees"']  # fmt: skip
    at = [html.index(m) for m in marks]
    assert at == sorted(at)
    headline = parse(html).by_id("headline")
    paper, own = (rows_of(t) for t in headline.find_all("table"))
    # The paper's layout for the entry made with --preset paper (hand-computed in
    # tests/eval_helpers.py): original 5/6, enhanced 2/4 with w5 as itself, drop 1/3.
    assert paper[0] == ["model", "dataset", "original [95% CI]", "enhanced [95% CI]",
                        "drop [95% CI]"]  # fmt: skip
    (row,) = paper[1:]
    assert row[:2] == [EVAL, "overall"]
    assert row[2].startswith("83.3% [") and row[2].endswith("(n=6)")
    assert row[3].startswith("50.0% [") and row[3].endswith("(n=4, 1 originally failed)")
    assert row[4].startswith("33.3% [")
    # cdvkit's own: every question, the questions with an example, the drop and its interval,
    # and the order control (the examples reversed their choices, so it was measured).
    assert own[0] == [
        "model", "dataset", "accuracy, every question", "with an example: original",
        "distracted", "drop [95% CI]", "order part [95% CI]", "distraction part [95% CI]",
    ]  # fmt: skip
    by_model = {r[0]: r[1:] for r in own[1:]}
    assert list(by_model) == [EVAL, TARGET, LONG]
    ev = by_model[EVAL]
    assert ev[:4] == ["overall", "83.3% of 6", "100.0% of 3", "33.3%"]
    assert ev[4].startswith("66.7% [") and ev[5].startswith("33.3% [")
    assert ev[6].startswith("33.3% [")
    assert by_model[TARGET][3] == "0.0% (by construction)"
    searched = headline.find("p", "searched").text()
    assert "6 questions: 4 answered right undistracted and searched" in searched
    assert "found 4 CDV examples on 3 questions" in searched
    assert "Search: 0 paid calls, USD 0.0000" in searched and "evaluation: " in searched


def test_the_order_control_shows_only_where_it_was_measured(xss_run):
    """A run that kept each example's choice order has no order control to show."""
    headline = parse(render_html(collect(xss_run))).by_id("headline")
    (table,) = headline.find_all("table")
    header = rows_of(table)[0]
    assert "drop [95% CI]" in header and not any("order part" in h for h in header)


def test_the_gallery_shows_every_example_beside_its_original(world):
    data = collect(world)
    page = parse(render_html(data))
    cards = page.by_id("gallery").find_all("article", "ex")
    assert sorted((c.attrs["data-qid"], c.attrs["data-path"]) for c in cards) == sorted(
        good_nodes(world)
    )
    questions = {q["id"]: q for q in data["questions"]}
    for card in cards:
        q = questions[card.attrs["data-qid"]]
        node = next(n for n in q["nodes"] if n["path"] == card.attrs["data-path"])
        original, example = card.find("section", "orig"), card.find("section", "dist")
        assert original.find("p", "qtext").text() == q["question"]
        # The example's text whole, what it added marked as inserted.
        qtext = example.find("p", "qtext")
        assert qtext.text() == node["question"]
        added = [m.text() for m in qtext.find_all("ins", "add")]
        expected = ["DISTRACT: a sentence."] + ([STACKED] if node["depth"] == 3 else [])
        assert added == expected
        right = [li.text() for li in example.find_all("li", "correct")]
        assert len(right) == 1 and right[0].startswith(node["choices"][node["answer"]])
        pushed = [li.text() for li in example.find_all("li", "target")]
        assert pushed == ([] if node["target_option"] is None else [pushed[0]])
        if node["target_option"]:
            assert pushed[0].startswith(node["target_option"]) and "➜ pushed" in pushed[0]
        link = card.find("a")
        assert link.attrs["href"] == f"#q={q['id']}&node={node['path']}"
    by_key = {(c.attrs["data-qid"], c.attrs["data-path"]): c for c in cards}
    # Model fooled, from the evaluation: scripted/weval (index 0) on w1 and w2, not on w3; the
    # stacked example is not the one each question's evaluation asked.
    assert " 0 " in by_key["w1", "r.0"].attrs["data-fooled"]
    assert " 0 " in by_key["w2", "r.0"].attrs["data-fooled"]
    assert " 0 " not in by_key["w3", "r.0"].attrs["data-fooled"]
    assert "Not evaluated" in by_key["w1", "r.0.0"].find("div", "evald").text()
    assert "not fooled: scripted/weval (100.0% → 100.0%)" in by_key["w3", "r.0"].text()
    # Sorted by drop: the evaluated examples (mean drop over the three models) first.
    drops = [float(c.attrs["data-drop"] or -1) for c in cards]
    assert drops == sorted(drops, reverse=True) and drops[-1] == -1
    # Filters for dataset, subject, model fooled and depth, switched on by the script.
    controls = page.by_id("gallery-controls")
    assert "hidden" in controls.attrs
    assert {s.attrs["id"] for s in controls.find_all("select")} == {
        "g-dataset", "g-subject", "g-fooled", "g-depth", "g-sort"}  # fmt: skip
    assert [o.text() for o in page.by_id("g-fooled").find_all("option")] == ["any", EVAL,
                                                                          TARGET, LONG]  # fmt: skip


def test_every_example_shows_the_replies_that_decided_it(world):
    page = parse(render_html(collect(world)))
    cards = {
        (c.attrs["data-qid"], c.attrs["data-path"]): c
        for c in page.by_id("gallery").find_all("article", "ex")
    }
    # Sampled answers: each read answer, and every reply (its markup shown as text).
    sampled = cards["w2", "r.0"].find("section", "dist")
    reads = [r.text() for r in sampled.find_all("div", "read")]
    assert any("sampled by the search: 0 of 2 right (A ✗ ×2)" in r for r in reads)
    replies = [r.text() for r in sampled.find_all("pre", "reply")]
    assert replies == [SAMPLED_REPLY.format("A")] * 2
    # Scored from probabilities: each choice's probability, and the confirmation's replies.
    exact = cards["w1", "r.0.0"].find("section", "dist")
    text = exact.text()
    assert "scored from probabilities: P(right) = 10.0%" in text
    choices = exact.find("ol", "choices").find_all("li")
    assert [li.text().split("p=")[-1] for li in choices] == ["5.0%", "10.0%", "85.0%"]
    assert "confirmation under the protocol: 0 of 3 right (C ✗ ×3)" in text
    assert [r.text() for r in exact.find_all("pre", "reply")] == [VERIFY_REPLY.format("C")] * 3
    verdicts = {li.text(): li.classes for li in exact.find_all("li") if li.parent.tag == "ul"}
    assert verdicts["✓ judge: the answer stays Mars"] == {"pass"}


def test_a_judge_not_asked_yet_is_neutral():
    html = verdicts_html(
        {"length": {"passed": True, "score": 1.2}, "judge": {"passed": None, "reason": DEFERRED}}
    )
    items = parse(html).find_all("li")
    assert [li.classes for li in items] == [{"pass"}, {"pending"}]
    assert items[1].text() == f"○ judge: {DEFERRED}" and "✗" not in html
    # The trees' script draws the same (tests/test_report_browser.py runs it on such a node).
    js = (Path(cdvkit.reporting.__file__).parent / "templates" / "report.js").read_text()
    assert 'var cls = !asked ? "pending"' in js


def test_markdown_summary_headline_examples_and_plots(world, tmp_path, cli_app):
    out = tmp_path / "out"
    res = runner.invoke(
        cli_app,
        ["report", str(world), "--format", "md", "-o", str(out / "summary.md"),
         "--png", str(out / "plots")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (out / "summary.md").read_text()
    heads = ["## How much does each model drop?", "## Plots", "## Examples (4)", "## Search"]
    assert [md.index(h) for h in heads] == sorted(md.index(h) for h in heads)
    assert "| model | dataset | original [95% CI] | enhanced [95% CI] | drop [95% CI] |" in md
    assert "| scripted/weval | overall | 83.3% of 6 | 100.0% of 3 | 33.3% | 66.7% [" in md
    assert (
        "| scripted/wtarget | overall | 83.3% of 6 | 100.0% of 3 | 0.0% (by construction) |" in md
    )
    # Every example under its original: the added text in bold, each choice marked.
    examples = md.split("## Examples (4)")[1].split("## Search")[0]
    assert examples.count("- Original: ") == 4
    assert "- Example (node r.0): **DISTRACT: a sentence.** How many legs does a spider have?" in md
    assert f"Which planet is called the red planet? **{STACKED}**" in md
    assert "  - A. ten (pushed by the added text)\n  - B. eight (right)\n  - C. six\n" in md
    assert "  - C. Venus (pushed by the added text, p=85.0%)" in md
    assert "- Target, confirmation under the protocol: 0 of 3 right (C ✗ ×3)" in md
    assert "- Checks: length passed, judge passed" in md
    assert "- Evaluated with defense none: fooled: scripted/weval (100.0% → 0.0%)" in md
    # Links to the PNG plots, relative to the summary, each one written.
    links = re.findall(r"!\[[^\]]*\]\(<([^>]+)>\)", md)
    assert links and all(link.startswith("plots/") for link in links)
    assert {(out / link).name for link in links} == {p.name for p in (out / "plots").iterdir()}
    assert [link.split("/", 1)[1] for link in links] == [n for n, _ in plot_files(collect(world))]
    # Without --png there is nothing to link.
    assert "## Plots" not in render_markdown(collect(world))


def test_markdown_marks_are_the_only_markup(xss_run):
    md = render_markdown(collect(xss_run))
    body = md.split("## Examples")[1].split("## Search")[0]
    # The proposer's sentence is bold, and its markup escaped inside the bold.
    assert "**DISTRACT: people often talk about" in body
    assert "&lt;/script&gt;&lt;script&gt;alert('distraction')&lt;/script&gt;**" in body
    assert "<script" not in md.lower() and "<i>" not in md
    assert md_text("a *b* [c](d) `e` _f_ <g>") == "a \\*b\\* \\[c\\](d) \\`e\\` \\_f\\_ &lt;g&gt;"


def test_svg_charts_keep_every_label_whole_and_draw_intervals():
    long = "openai-compatible/meta-llama/Llama-3.1-70B-Instruct-Turbo · mmlu-professional-law"
    chart = svg.bar_chart(
        [long, "short"],
        ["original", "distracted"],
        [[0.9, 0.4], [0.8, None]],
        errors=[[[0.85, 0.95], [0.3, 0.5]], [None, None]],
        title="Accuracy, examples found against " + long,
    )
    page = parse(chart)
    label = next(t for t in page.find_all("text") if t.find_all("tspan") and "Llama" in t.text())
    assert "".join(s.text() for s in label.find_all("tspan")).replace(" ", "") == long.replace(
        " ", ""
    )
    assert len(label.find_all("tspan")) > 1  # wrapped, not cut
    assert "…" not in chart and chart.count('class="whisker"') == 2
    title = page.find("text", "ttl").text()
    assert title.endswith(long)
    width = int(page.find("svg").attrs["width"])
    assert width >= svg.text_px(title, svg.TITLE_PX)
    heat = svg.heatmap([long], [long, "b"], [[0.1, None]], title="Transfer")
    assert "…" not in heat
    cells = [t for t in parse(heat).find_all("text") if t.find_all("tspan")]
    assert sum("".join(s.text() for s in c.find_all("tspan")) == long for c in cells) == 2


def test_png_plots_have_error_bars_and_whole_labels(world, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    checked: dict[str, bool] = {}
    save = Figure.savefig

    def checking_savefig(fig, path, *args, **kwargs):
        # Everything drawn (titles, tick labels, axis labels, legends) lies inside the figure.
        fig.canvas.draw()
        drawn = fig.get_tightbbox(fig.canvas.get_renderer())
        page = fig.bbox_inches
        assert drawn.x0 >= page.x0 - 0.01 and drawn.x1 <= page.x1 + 0.01, (path, drawn)
        assert drawn.y0 >= page.y0 - 0.01 and drawn.y1 <= page.y1 + 0.01, (path, drawn)
        bars = [c for ax in fig.axes for c in ax.containers if hasattr(c, "errorbar")]
        checked[Path(path).name] = any(c.errorbar is not None for c in bars)
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", checking_savefig)
    written = write_pngs(collect(world), tmp_path / "png")
    assert {p.name for p in written} == set(checked)
    accuracy = [n for n in checked if n.startswith("accuracy-")]
    assert accuracy and all(checked[n] for n in accuracy)
