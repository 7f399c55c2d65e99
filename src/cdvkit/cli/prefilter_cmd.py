"""`cdv prefilter train` and `cdv prefilter eval`: the enhanceability prefilter.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cdvkit.cli.common import USER_ERRORS, console, err
from cdvkit.cli.common import fail as _fail
from cdvkit.cli.layout import Col, print_fitted

DATA_HELP = (
    'Labelled questions: a reference-format JSON file (instruction/output Yes|No; "Yes" = the '
    "search found a good question = enhanceable, whatever the instruction's wording) or a cdvkit "
    "run directory (a question with an example, or one the target failed, = enhanceable). "
    "Repeat for several."
)


def _print_labels(title: str, meaning: str, sources: list[dict[str, Any]] | None) -> None:
    """What label 1 means and, per source, its rows, positives and how they were read."""
    console.print(f"{title}: {meaning}", highlight=False)
    for r in sources or []:
        console.print(
            f"  {r['source']}: {r['n']} rows, {r['positives']} enhanceable; {r['reading']}",
            highlight=False,
        )


def _load(paths: list[Path]) -> Any:
    from cdvkit.prefilter import Labelled, load_labelled

    data = Labelled()
    for p in paths:
        data.extend(load_labelled(p))
    if not data:
        raise ValueError("no labelled questions in " + ", ".join(map(str, paths)))
    return data


@contextmanager
def _fold_progress(folds: int, show: bool, what: str) -> Iterator[Any]:
    """A progress bar on stderr advanced once per fold (``None`` when not shown)."""
    if not show or folds < 2:
        yield None
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("folds"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(what, total=folds)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="prefilter",
        help="Predict which questions can be made into CDV examples, to skip the rest.",
        no_args_is_help=True,
    )

    @sub.command("train")
    def train(
        data: Annotated[list[Path], typer.Option("--data", "-d", help=DATA_HELP)],
        output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write.")],
        c: Annotated[float, typer.Option("--C", help="Inverse regularisation strength.")] = 0.1,
        cv: Annotated[
            int, typer.Option(help="Also record a k-fold cross-validated AUC (0: skip).")
        ] = 5,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print metadata as JSON.")] = False,
    ) -> None:
        """Train the prefilter (MiniLM embeddings + logistic regression) and save it."""
        from cdvkit.prefilter import train_prefilter

        try:
            labelled = _load(data)
            with _fold_progress(cv, not (quiet or as_json), "training, cross-validating") as bar:
                model = train_prefilter(labelled, c=c, seed=seed, cv_folds=cv, progress=bar)
            model.metadata["trained_on"] = [str(p) for p in data]
            model.save(output)
        except USER_ERRORS as exc:
            raise _fail(str(exc)) from None
        meta = model.metadata
        if as_json:
            print(json.dumps({"model": str(output), **meta}, indent=2))
            return
        auc = f", {cv}-fold AUC {meta['cv_auc']:.3f}" if "cv_auc" in meta else ""
        console.print(
            f"trained on {meta['n']} questions ({meta['positives']} enhanceable){auc}; "
            f"saved to [cyan]{output}[/]",
            highlight=False,
        )
        _print_labels("labels", model.label_meaning, model.label_sources)

    @sub.command("eval")
    def evaluate(
        data: Annotated[list[Path], typer.Option("--data", "-d", help=DATA_HELP)],
        model: Annotated[
            Path | None,
            typer.Option(help="Saved model to score; without it, cross-validate on --data."),
        ] = None,
        folds: Annotated[int, typer.Option(help="Folds when cross-validating.")] = 5,
        thresholds: Annotated[
            str, typer.Option(help="Comma-separated thresholds to tabulate.")
        ] = "0.2,0.3,0.4,0.5",
        c: Annotated[float, typer.Option("--C", help="C when cross-validating.")] = 0.1,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    ) -> None:
        """AUC of a saved model on labelled data, or a cross-validated AUC of a fresh one."""
        from cdvkit.prefilter import (
            LABEL_MEANING,
            Prefilter,
            auc,
            out_of_fold_probs,
            threshold_rows,
        )

        try:
            ts = [float(t) for t in thresholds.split(",") if t.strip()]
            labelled = _load(data)
            labels = list(labelled.labels)
            saved = None if model is None else Prefilter.load(model)
            if saved is not None:
                probs = saved.predict_proba(labelled.texts).tolist()
                how = f"model {model}"
            else:
                # Out-of-fold probabilities: each question is scored by a model that never saw it.
                with _fold_progress(folds, not (quiet or as_json), "cross-validating") as bar:
                    probs = out_of_fold_probs(labelled, folds=folds, c=c, seed=seed, progress=bar)
                how = f"{folds}-fold cross-validation"
        except USER_ERRORS as exc:
            raise _fail(str(exc)) from None
        result = {
            "scored_by": how,
            "n": len(labels),
            "enhanceable": sum(labels),
            "auc": auc(labels, probs),
            "thresholds": threshold_rows(labels, probs, ts),
            "labels": {"meaning": LABEL_MEANING, "sources": labelled.record()},
        }
        if saved is not None:
            # The model's own record: None for a file made before cdvkit kept one.
            result["model_labels"] = {
                "meaning": saved.label_meaning,
                "sources": saved.label_sources,
            }
        if as_json:
            print(json.dumps(result, indent=2))
            return
        auc_text = "n/a (one class only)" if result["auc"] is None else f"{result['auc']:.3f}"
        console.print(
            f"{result['n']} questions ({result['enhanceable']} enhanceable), scored by {how}: "
            f"AUC {auc_text}",
            highlight=False,
        )
        _print_labels("labels of --data", LABEL_MEANING, result["labels"]["sources"])
        if saved is not None:
            _print_labels("labels the model was trained on", **result["model_labels"])
        cols = [
            Col(h, justify="right")
            for h in ("threshold", "skipped", "enhanceable lost", "skips that were right")
        ]
        rows = [
            [
                f"{r['threshold']:g}",
                f"{r['skipped']} ({r['skipped_share']:.0%})",
                f"{r['enhanceable_lost']} ({r['enhanceable_lost_share']:.0%})",
                "–" if r["precision_of_skip"] is None else f"{r['precision_of_skip']:.0%}",
            ]
            for r in result["thresholds"]
        ]
        print_fitted(console, "skipping questions with P(enhanceable) < threshold", cols, rows)

    app.add_typer(sub, name="prefilter")
