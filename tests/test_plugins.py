"""A new proposer, constraint and model provider, defined here and nowhere else, registered by
name and used by `cdv generate` by name: adding a part is one module, no edit to cdvkit."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit import registry as registry_module
from cdvkit.cli.app import app
from cdvkit.data.question import LETTERS
from cdvkit.models.base import Completion, GenerateRequest, Model, Usage
from cdvkit.models.registry import PROVIDERS, provider
from cdvkit.registry import Registry, parse_spec
from cdvkit.search.constraints import CONSTRAINTS, Verdict
from cdvkit.search.proposers import PROPOSERS, ProposalContext
from cdvkit.store import RunStore

MARK = "PSST"


class ShoutProposer:
    name = "shout"

    def __init__(self, word: str) -> None:
        self.word = word

    async def propose(self, ctx: ProposalContext) -> str:
        return f"{self.word}: everyone keeps saying {ctx.node.choices[ctx.target]}."


class NoDigits:
    """Drops any distraction with a digit in it; calls no model."""

    name = "no-digits"
    calls_model = False

    async def check(self, original: Any, parent: Any, child: Any) -> Verdict:
        ok = not any(ch.isdigit() for ch in child.distraction or "")
        return Verdict(ok, "" if ok else "has a digit")


class Gullible(Model):
    """Right on a plain question, fooled by any sentence carrying the mark."""

    provider = "gullible"

    def __init__(self, spec: str, name: str, **options: Any) -> None:
        options.pop("base_url", None)
        super().__init__(spec, **options)

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        mcq = request.mcq
        assert mcq is not None
        right = next(i for i, c in enumerate(mcq.choices) if c.startswith("right"))
        pick = (right + 1) % len(mcq.choices) if MARK in mcq.question else right
        return Completion([f"Thinking... Answer: {LETTERS[pick]}"] * n, Usage(10, 5))


@pytest.fixture
def parts():
    PROPOSERS.add("shout", lambda ctx, word="HEY": ShoutProposer(word), help="test proposer")
    CONSTRAINTS.add("no-digits", lambda ctx: NoDigits(), help="test constraint")
    provider("gullible", description="test provider")(Gullible)
    yield
    PROPOSERS.remove("shout")
    CONSTRAINTS.remove("no-digits")
    PROVIDERS.remove("gullible")


def test_parts_defined_in_a_test_module_run_by_name(parts, tmp_path: Path) -> None:
    data = tmp_path / "q.jsonl"
    rows = [
        {"question": f"Question {w}?", "choices": ["right", "wrong a", "wrong b"], "answer": 0}
        for w in ("one", "two", "three")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(
        app,
        ["generate", "--data", str(data), "--target", "gullible/any",
         "--proposer", f"shout:word={MARK}", "--constraint", "no-digits",
         "--similarity-floor", "0", "--run-dir", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["with_example"] == 3
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        examples = list(store.examples())
        nodes = store.nodes()
    assert examples and all(e["distraction"].startswith(f"{MARK}:") for e in examples)
    # The constraint was asked about every child, under its own name.
    children = [n for n in nodes if n["parent_path"] is not None]
    assert children and all(n["verdicts"]["no-digits"]["passed"] for n in children)
    # And `cdv parts` lists them with the built-in ones.
    listed = json.loads(CliRunner().invoke(app, ["parts", "--json"]).stdout)
    names = {(r["kind"], r["name"]) for r in listed}
    assert {("proposer", "shout"), ("constraint", "no-digits"), ("provider", "gullible")} <= names
    assert ("proposer", "llm") in names and ("export format", "lm-eval") in names


def test_a_part_option_that_does_not_exist_is_one_line(parts, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["generate", "--data", "sample", "--proposer", "nosuch:x=1",
         "--run-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert res.exit_code == 2 and "registered proposer" in res.output
    assert not (tmp_path / "run").exists()
    res = CliRunner().invoke(
        app,
        ["generate", "--data", "sample", "--constraint", "nosuch",
         "--run-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--constraint 'nosuch': unknown" in " ".join(res.output.split())


def test_specs_read_options_as_numbers_booleans_or_text() -> None:
    assert parse_spec("llm:model=openai/gpt-4o,temperature=0.9,batch=false") == (
        "llm",
        {"model": "openai/gpt-4o", "temperature": 0.9, "batch": False},
    )
    assert parse_spec("judge:model=ollama/llama3.1:8b") == (
        "judge",
        {"model": "ollama/llama3.1:8b"},
    )
    assert parse_spec("leak") == ("leak", {})
    with pytest.raises(ValueError, match="not key=value"):
        parse_spec("judge:openai/gpt-4o")


def test_other_packages_add_parts_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed package declares [project.entry-points."cdvkit.things"] shout = "mod:factory".
    seen: list[str] = []
    fake = EntryPoint("shout", "json:dumps", "cdvkit.things")

    def entry_points(*, group: str) -> list[EntryPoint]:
        seen.append(group)
        return [fake] if group == "cdvkit.things" else []

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    things: Registry[Any] = Registry("thing", "cdvkit.things")
    assert things.get("shout") is json.dumps and seen == ["cdvkit.things"]
    with pytest.raises(ValueError, match=r"unknown thing 'nope' \(registered: shout\)"):
        things.get("nope")


def test_a_plugin_that_fails_to_load_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("bad", "no_such_module_anywhere:thing", "cdvkit.things2")
    monkeypatch.setattr(
        registry_module,
        "entry_points",
        lambda *, group: [broken] if group == "cdvkit.things2" else [],
    )
    things: Registry[Any] = Registry("thing", "cdvkit.things2")
    things.add("good", json.dumps)
    with pytest.warns(UserWarning, match="thing plugin 'bad'"):
        assert list(things) == ["good"]
