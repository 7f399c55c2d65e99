"""What an evaluation reads before anything is asked: its example sets (runs, examples files, the
dataset behind a file) and its settings (the command line over a preset over the run's own
protocol). Everything here only reads, so a bad input leaves nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdvkit.evaluation.evaluate import run_protocol
from cdvkit.evaluation.example_rows import from_run_dir
from cdvkit.evaluation.examples_file import attach_dataset, load_examples_file
from cdvkit.evaluation.items import ExampleSet
from cdvkit.evaluation.presets import eval_preset
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.protocol import Protocol
from cdvkit.store import RunStore


@dataclass
class EvalInputs:
    sets: list[ExampleSet]
    settings: EvalSettings
    extractor: str | None  # the one given, or the run's under --preset paper


def read_sets(
    runs: list[Path], files: list[tuple[str, str | None]], data: str | None = None
) -> list[ExampleSet]:
    """The example sets of ``runs`` and of ``files`` ((path, label) pairs), with the questions
    of ``data`` (a built-in name or a file, read like `cdv generate --data`) joined to every
    file's set as the dataset it was found on."""
    for r in runs:
        if not (r / "run.db").exists():
            raise FileNotFoundError(f"{r} holds no cdvkit run (run.db is missing)")
    if data is not None and not files:
        raise ValueError("--data names the dataset of --examples files; a run knows its questions")
    sets = _distinct_run_labels([from_run_dir(r) for r in runs])
    file_sets = [load_examples_file(path, label) for path, label in files]
    if data is not None:
        from cdvkit.tasks import load_questions

        questions = load_questions(data).questions
        file_sets = [attach_dataset(es, questions) for es in file_sets]
    sets += file_sets
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two example sets share the label {labels!r}; name them LABEL=PATH")
    return sets


def read_inputs(
    runs: list[Path],
    files: list[tuple[str, str | None]],
    *,
    data: str | None = None,
    preset: str | None = None,
    extractor: str | None = None,
    protocol: str | None = None,
    samples: int | None = None,
    temperature: float | None = None,
    target_prompt: str | None = None,
    threshold: float | None = None,
    **stats: Any,
) -> EvalInputs:
    """Read every input and settle the settings; ``stats`` are EvalSettings' other fields
    (all_examples, resamples, seed, concurrency, order_control, by). Raises ValueError."""
    fixed = eval_preset(preset)
    sets = read_sets(runs, files, data)
    base = run_protocol(runs[0]) if runs else Protocol()
    if preset == "paper":
        partial = next((s for s in sets if not s.whole), None)
        if partial is not None:
            raise ValueError(
                "--preset paper scores original accuracy over every question of the dataset: "
                f"give --data, the dataset {partial.path} was found on"
            )
        extractor = extractor or _stored_extractor(runs)
        if extractor is None:
            raise ValueError(
                "--preset paper reads every answer with an extractor: give --extractor "
                "provider/model (no --run stores one)"
            )

    def pick(given: Any, name: str, run_value: Any) -> Any:
        # The command line, then the preset, then the run's own protocol.
        return given if given is not None else fixed.get(name, run_value)

    settings = EvalSettings(
        samples=pick(samples, "samples", base.samples),
        temperature=pick(temperature, "temperature", base.temperature),
        scoring=pick(protocol, "scoring", base.scoring),
        prompt=pick(target_prompt, "prompt", base.prompt),
        threshold=pick(threshold, "threshold", base.threshold),
        # The run's own reading, where an extractor is there to do it.
        always_extract=fixed.get("always_extract", base.always_extract and bool(extractor)),
        preset=preset,
        **stats,
    )
    return EvalInputs(sets, settings, extractor)


def check_something_to_ask(sets: list[ExampleSet]) -> None:
    """ValueError when no set has a question to ask."""
    if not any(s.items or (s.whole and s.others) for s in sets):
        raise ValueError(
            "no question with a CDV example to evaluate (--data adds the dataset's other questions)"
        )


def _stored_extractor(runs: list[Path]) -> str | None:
    """The extractor of the first of ``runs`` that was searched with one."""
    for r in runs:
        with RunStore(r, lock=False, readonly=True) as store:
            name = (store.get_config() or {}).get("extractor")
        if name:
            return str(name)
    return None


def _distinct_run_labels(sets: list[ExampleSet]) -> list[ExampleSet]:
    """Runs against one target (a CDV run and a baseline, two datasets) stay apart in the
    tables: a label runs share gets each run directory's name."""
    labels = [s.label for s in sets]
    for s in sets:
        if labels.count(s.label) > 1:
            s.label = f"{s.label} ({Path(s.path).name})"
    return sets
