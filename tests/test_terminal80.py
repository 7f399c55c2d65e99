"""Every command at 80 columns: no option name, model name or number is cut, commands to paste
stand whole on their own line; the progress of `cdv generate` (calls, examples, a resumed run's
real totals, movement while questions are in flight) and the "from the store" count of
`cdv evaluate` (one definition, the same in the line and in --json)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

import cdvkit
from cdvkit.api import RunHooks
from cdvkit.cli.app import app
from cdvkit.cli.eval_tables import short_names
from cdvkit.cli.layout import TEXT, WHOLE, WORDS, Col, fit_widths, print_fitted
from cdvkit.models.scripted import REGISTRY
from cdvkit.reporting.tables import pct
from eval_helpers import QUESTIONS, build_world, make_run, register_models, register_world
from scripted_helpers import oracle_responder, write_questions

runner = CliRunner()
WIDTH = 80
NARROW = {"COLUMNS": str(WIDTH)}
# Two models an OpenAI-compatible server might serve: one prefix, names that differ late.
LONG_MODELS = (
    "scripted/openai-compatible/Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4",
    "scripted/openai-compatible/Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4",
)


def cdv(*args: Any, ok: bool = True) -> Any:
    res = runner.invoke(app, [str(a) for a in args], env=NARROW)
    if ok:
        assert res.exit_code == 0, res.output
    return res


def rich_lines(text: str, *, except_with: tuple[str, ...] = ()) -> list[str]:
    """The lines of ``text`` rich laid out: none may be wider than the terminal. Lines holding
    one of ``except_with`` are printed unwrapped on purpose (a command to paste whole)."""
    lines = text.splitlines()
    wide = [line for line in lines if len(line) > WIDTH and not any(w in line for w in except_with)]
    assert not wide, "\n".join(wide)
    assert "…" not in text
    return lines


def on_one_line(text: str, piece: str) -> bool:
    return any(piece in line for line in text.splitlines())


def whole_token(text: str, token: str) -> bool:
    """``token`` appears with no name character glued to either side (not cut, not a prefix)."""
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


# --- every --help ------------------------------------------------------------------------------


def _commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)]
    for name, sub in getattr(group, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(get_command(app))


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "cdv" for p, _ in COMMANDS])
def test_every_help_shows_every_option_whole(path: tuple[str, ...], command: Any) -> None:
    out = cdv(*path, "--help").output
    rich_lines(out)
    shown = [p for p in command.params if not getattr(p, "hidden", False)]
    names = [n for p in shown for n in (*p.opts, *p.secondary_opts) if n.startswith("-")]
    for name in names:
        assert whole_token(out, name), f"{' '.join(path)} --help cuts {name}"
    for name in getattr(command, "commands", {}):
        assert whole_token(out, name)


def test_generate_help_names_its_long_options_whole() -> None:
    out = cdv("generate", "--help").output
    for name in (
        "--prefilter-threshold",
        "--proposer-temperature",
        "--model-concurrency",
        "--ray-gpus-per-worker",
        "--no-always-extract",
        "--no-proposer-batch",
        "--no-batch-samples",
    ):
        assert on_one_line(out, name + " ") or on_one_line(out, name + "\n"), name


# --- listings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command,whole,free",
    [
        ("models", ("provider", "example"), ("status", "about")),
        ("datasets", ("name", "task", "source", "split"), ("about",)),
        ("parts", ("name",), ("kind", "used as", "about")),
    ],
)
def test_listings_keep_names_whole_and_wrap_text_at_spaces(
    command: str, whole: tuple[str, ...], free: tuple[str, ...]
) -> None:
    rows = json.loads(cdv(command, "--json").stdout)
    out = cdv(command).output
    rich_lines(out)
    for row in rows:
        for key in whole:
            assert on_one_line(out, str(row[key])), (command, row[key])
        for key in free:
            # Text may wrap, but only at its spaces: every word stays on one line.
            for word in str(row[key]).split():
                assert on_one_line(out, word), (command, key, word)


# --- generate: the estimate, the progress, the summary -------------------------------------------


def test_the_estimate_keeps_its_ranges_whole() -> None:
    args = ["generate", "--data", "sample", "--estimate", "--target", "openai/gpt-4o"]
    args += ["--proposer", "openai/gpt-4o-mini", "--judge", "openai/gpt-4o-mini"]
    forecast = json.loads(cdv(*args, "--json").stdout)
    out = cdv(*args).output
    rich_lines(out)
    assert forecast["roles"]
    for role in forecast["roles"].values():
        lo, mid, hi = role["calls"]
        assert on_one_line(out, f"{mid:,.0f}") and on_one_line(out, f"({lo:,.0f}-{hi:,.0f})")
        if role.get("priced"):
            clo, cmid, chi = role["cost"]
            assert on_one_line(out, f"{cmid:.4f}") and on_one_line(out, f"({clo:.4f}-{chi:.4f})")


def scripted_generate(data: Path, run: Path, *more: str) -> list[str]:
    return ["generate", "--data", str(data), "--run-dir", str(run), "--target", "scripted/oracle",
            "--proposer", "scripted/prop", "--similarity-floor", "0", *more]  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    register_models()
    return write_questions(tmp_path / "q.jsonl", QUESTIONS)


def test_generate_at_80_columns_and_a_resumed_run_shows_its_real_totals(
    data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    first = cdv(*scripted_generate(data, run)).output
    rich_lines(first)
    summary = json.loads(cdv(*scripted_generate(data, run), "--json").stdout)
    assert summary["examples"] > 0 and summary["calls"] > 0
    # The summary's numbers stand whole beside their labels.
    assert re.search(rf"paid model calls \(search\)\s*│\s*{summary['calls']} │", first)
    assert re.search(rf"CDV examples\s*│\s*{summary['examples']} │", first)
    # The bar counts calls paid and examples found; nothing was left, so a resumed run shows
    # the run's own totals (it used to say "0 examples").
    again = cdv(*scripted_generate(data, run)).output
    rich_lines(again)
    n = len(QUESTIONS)
    assert f"{n}/{n} done {summary['calls']} calls, {summary['examples']} examples" in again
    assert f"{summary['calls']} calls, {summary['examples']} examples" in first


class Watching(RunHooks):
    """Records what a progress display is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def running(self, total: int, done: int, store: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def watch() -> Any:
            yield lambda qid, status: self.events.append(("ended", qid))

        return watch()

    def progress(self, progress: Any) -> None:
        self.events.append(("moved", (progress.calls, progress.examples, dict(progress.in_flight))))


def test_progress_moves_per_expansion_while_questions_are_in_flight(
    data: Path, tmp_path: Path
) -> None:
    hooks = Watching()
    res = cdvkit.generate(
        str(data),
        run_dir=tmp_path / "run",
        target="scripted/oracle",
        proposer="scripted/prop",
        similarity_floor=0,
        concurrency=1,
        hooks=hooks,
    )
    first_end = next(i for i, (kind, _) in enumerate(hooks.events) if kind == "ended")
    before = [value for kind, value in hooks.events[:first_end] if kind == "moved"]
    # Before any question has ended the bar has already moved: calls paid, an expansion made.
    assert any(calls > 0 for calls, _, _ in before)
    assert any(share > 0 for _, _, flight in before for share in flight.values())
    assert all(0 <= share < 1 for _, _, flight in before for share in flight.values())
    moved = [value for kind, value in hooks.events if kind == "moved"]
    calls = [c for c, _, _ in moved]
    assert calls == sorted(calls)
    # Its totals end where the run's summary does.
    assert moved[-1][0] == res.summary["calls"] and moved[-1][1] == res.summary["examples"]
    assert moved[-1][2] == {}


# --- evaluate: one compact table, names and numbers whole, the store count ---------------------


@pytest.fixture
def run(tmp_path: Path) -> Path:
    register_models()
    return make_run(tmp_path / "run")


def test_evaluate_prints_one_model_by_defence_table(run: Path, tmp_path: Path) -> None:
    for name in LONG_MODELS:
        REGISTRY[name.split("/", 1)[1]] = oracle_responder(QUESTIONS, fooled_at=1 + ("7B" in name))
    args = ["evaluate", "--run", run, "--models", *LONG_MODELS, "--defense", "none",
            "--defense", "cot", "--out", tmp_path / "ev", "--bootstrap", "50"]  # fmt: skip
    out = cdv(*args).output
    entries = json.loads(cdv(*args, "--json").stdout)["evaluations"]
    lines = rich_lines(out, except_with=("start with",))
    # One table: a header row naming each defence once, each model once.
    assert sum(1 for line in lines if line.startswith("┃ model")) == 1
    header = next(line for line in lines if line.startswith("┃ model"))
    assert "none" in header and "cot" in header
    # The two models stay apart: whole, or without the prefix they share, which is said.
    short, prefix = short_names(list(LONG_MODELS))
    assert prefix == "scripted/openai-compatible/Qwen/"
    for model in LONG_MODELS:
        assert on_one_line(out, model) or (
            on_one_line(out, short[model]) and on_one_line(out, f"start with {prefix}")
        )
    # Every cell's numbers are there whole.
    for e in entries:
        (results,) = e["results"].values()
        for model in LONG_MODELS:
            o = results[model]["overall"]
            assert on_one_line(out, f"{pct(o['original'])} → {pct(o['distracted'])}")
            assert on_one_line(out, f"drop {pct(o['drop'])}")
            ci = o["drop_ci"]
            assert on_one_line(out, f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]")
    # The older per-table layout is gone; --json keeps every number.
    assert "Transfer" not in out and "side by side" not in out
    (results,) = entries[0]["results"].values()
    assert {"whole", "order", "overall", "by_dataset"} <= set(results[LONG_MODELS[0]])


def test_from_the_store_counts_what_the_store_answered(run: Path, tmp_path: Path) -> None:
    args = ["evaluate", "--run", run, "--models", "scripted/robust", "--out", tmp_path / "ev"]
    args += ["--bootstrap", "50"]
    first = cdv(*args).output
    entry = json.loads(cdv(*args, "--json").stdout)["evaluations"][0]
    total = entry["answers"]["total"]
    assert total > 0
    assert re.search(rf"{total} answers, 0 from the store, [1-9]\d* paid calls", first)
    # A second evaluation: every answer from the store, nothing paid; the line and --json agree.
    second = cdv(*args).output
    assert f"{total} answers, {total} from the store, 0 paid calls" in second
    assert entry["answers"] == {"total": total, "cached": total} and entry["paid_calls"] == 0


def test_answers_the_call_cache_gave_for_free_are_from_the_store(run: Path) -> None:
    # The run's own target under the run's protocol: the search asked every one of these
    # already, so not one request is paid, and the very first evaluation says so.
    res = cdv(
        "evaluate", "--run", run, "--models", "scripted/oracle", "--bootstrap", "50", "--json"
    )
    entry = json.loads(res.stdout)["evaluations"][0]
    assert entry["paid_calls"] == 0
    assert entry["answers"]["cached"] == entry["answers"]["total"] > 0


def test_the_paper_preset_prints_its_table(tmp_path: Path) -> None:
    register_world()
    world = build_world(tmp_path / "world")
    out = cdv("evaluate", "--run", world, "--models", "scripted/weval", "--preset", "paper").output
    rich_lines(out)
    # The hand-computed world (tests/eval_helpers.py): original 5/6 over every question,
    # enhanced 2/4, one question originally failed.
    assert "The paper's numbers" in out and "CDV evaluation" in out
    assert on_one_line(out, "83.3% → 50.0%") and on_one_line(out, "n=6→4")
    assert on_one_line(out, "1 orig. failed") and on_one_line(out, "drop 33.3%")


# --- commands to paste ---------------------------------------------------------------------------


def test_next_step_commands_stand_whole_on_their_own_line(run: Path, tmp_path: Path) -> None:
    deep = tmp_path / "a-rather-long-folder-name" / "with-another-long-folder" / "exports"
    out = cdv("export", run, "--format", "dpo", "-o", deep / "dpo").output
    lines = [line.strip() for line in out.splitlines()]
    train = f"cdv train --data {deep / 'dpo'} --model hf/<base> --method dpo"
    test = f"cdv evaluate --examples {deep / 'dpo' / 'test_examples.jsonl'} "
    assert train in lines
    assert any(line.startswith(test) and line.endswith("--models hf/<base> hf/<trained>")
               for line in lines)  # fmt: skip
    out = cdv("export", run, "--format", "lm-eval", "-o", deep / "lm").output
    lines = [line.strip() for line in out.splitlines()]
    assert any(line.startswith(f"lm_eval --include_path {deep / 'lm'} --tasks ") for line in lines)
    out = cdv("init", deep / "cdv.toml").output
    assert f"cdv generate --config {deep / 'cdv.toml'}" in [x.strip() for x in out.splitlines()]


# --- the other commands --------------------------------------------------------------------------


def test_show_and_report_fit(run: Path, tmp_path: Path) -> None:
    out = cdv("show", run, "--limit", "3").output
    rich_lines(out)
    assert "[correct]" in out
    rich_lines(cdv("show", run, "--status", "root").output)
    cdv("report", run, "-o", tmp_path / "r.html")


# --- the layout rules ----------------------------------------------------------------------------


def test_layout_gives_way_in_free_text_then_words_never_in_names() -> None:
    cols = [Col("name", WHOLE), Col("used as", WORDS), Col("about", TEXT)]
    rows = [["openai-compatible", "cdv evaluate --defense", "a long description " * 5]]
    widths = fit_widths(cols, rows, 60)
    assert widths is not None
    assert widths[0] == len("openai-compatible") and widths[1] >= len("--defense")
    assert sum(widths) + 3 * len(cols) + 1 <= 60
    # Too narrow for the name and the longest word: no table (the caller prints blocks).
    assert fit_widths(cols, rows, 30) is None


def test_blocks_when_a_table_cannot_fit(tmp_path: Path) -> None:
    console = Console(width=40, record=True, file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    cols = [Col("model"), Col("none", WHOLE), Col("cot", WHOLE)]
    rows = [["a-model-name-that-is-long", "100.0% → 0.0%\ndrop 100.0%", "50.0% → 25.0%"]]
    print_fitted(console, "title", cols, rows)
    text = console.export_text()
    assert "a-model-name-that-is-long" in text and "100.0% → 0.0%" in text
    assert all(len(line) <= 40 for line in text.splitlines())
