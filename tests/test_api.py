"""The one-call Python API, and the README's example of it, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cdvkit
from cdvkit.models.preflight import PreflightError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    # The section's first example; the EvalConfig ones after it name runs a reader has.
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    # The run's target, evaluated on its own examples under its own protocol: 100% then 0%.
    assert "original 100%, distracted 0%" in out
    assert (tmp_path / "runs" / "api" / "report.html").is_file()


def test_generate_returns_what_the_store_holds(tmp_path: Path) -> None:
    run = cdvkit.generate(data="sample", limit=4, run_dir=tmp_path / "run", max_good=1)
    assert run.complete and run.run_dir == tmp_path / "run"
    assert run.summary["examples"] == len(run.examples) > 0
    # The same call again resumes: nothing new is paid for.
    again = cdvkit.generate(data="sample", limit=4, run_dir=tmp_path / "run", max_good=1)
    assert again.summary == run.summary


def test_nothing_is_written_for_bad_settings_or_an_unusable_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="samples must be at least 1, not 0"):
        cdvkit.generate(data="sample", samples=0, run_dir=tmp_path / "a")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PreflightError, match="target model openai/gpt-4o-mini"):
        cdvkit.generate(data="sample", target="openai/gpt-4o-mini", run_dir=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
