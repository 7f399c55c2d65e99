"""`cdv prefilter train` and `cdv prefilter eval`: the enhanceability prefilter.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cdvkit.cli.common import USER_ERRORS, console
from cdvkit.cli.common import fail as _fail

DATA_HELP = (
    "Labelled questions: a reference-format JSON file (instruction/output Yes|No) or a cdvkit "
    "run directory (a question with an example = enhanceable). Repeat for several."
)


def _load(paths: list[Path]) -> Any:
    from cdvkit.prefilter import Labelled, load_labelled

    data = Labelled()
    for p in paths:
        data.extend(load_labelled(p))
    if not data:
        raise ValueError("no labelled questions in " + ", ".join(map(str, paths)))
    return data


def threshold_rows(labels: list[int], probs: list[float], thresholds: list[float]) -> list[dict]:
    """What skipping below each threshold would do: share skipped, enhanceable ones lost."""
    n, pos = len(labels), sum(labels)
    rows = []
    for t in thresholds:
        skipped = [y for y, p in zip(labels, probs, strict=True) if p < t]
        lost = sum(skipped)
        rows.append(
            {
                "threshold": t,
                "skipped": len(skipped),
                "skipped_share": len(skipped) / n if n else 0.0,
                "enhanceable_lost": lost,
                "enhanceable_lost_share": lost / pos if pos else 0.0,
                "precision_of_skip": (len(skipped) - lost) / len(skipped) if skipped else None,
            }
        )
    return rows


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
        as_json: Annotated[bool, typer.Option("--json", help="Print metadata as JSON.")] = False,
    ) -> None:
        """Train the prefilter (MiniLM embeddings + logistic regression) and save it."""
        from cdvkit.prefilter import train_prefilter

        try:
            labelled = _load(data)
            model = train_prefilter(labelled, c=c, seed=seed, cv_folds=cv)
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
        as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    ) -> None:
        """AUC of a saved model on labelled data, or a cross-validated AUC of a fresh one."""
        import numpy as np
        from sklearn.model_selection import StratifiedKFold

        from cdvkit.prefilter import Prefilter, auc, embed_texts, train_prefilter

        try:
            ts = [float(t) for t in thresholds.split(",") if t.strip()]
            labelled = _load(data)
            labels = list(labelled.labels)
            if model is not None:
                probs = Prefilter.load(model).predict_proba(labelled.texts).tolist()
                how = f"model {model}"
            else:
                # Out-of-fold probabilities: each question is scored by a model that never saw it.
                y = np.asarray(labels)
                embed_texts(labelled.texts)  # warm the embedding cache once for every fold
                oof = np.zeros(len(y))
                split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)
                for train_idx, test_idx in split:
                    fold = train_prefilter(labelled.subset(train_idx), c=c, seed=seed)
                    oof[test_idx] = fold.predict_proba(labelled.subset(test_idx).texts)
                probs = oof.tolist()
                how = f"{folds}-fold cross-validation"
        except USER_ERRORS as exc:
            raise _fail(str(exc)) from None
        result = {
            "scored_by": how,
            "n": len(labels),
            "enhanceable": sum(labels),
            "auc": auc(labels, probs),
            "thresholds": threshold_rows(labels, probs, ts),
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
        t = Table(title="skipping questions with P(enhanceable) < threshold", title_justify="left")
        for col in ("threshold", "skipped", "enhanceable lost", "skips that were right"):
            t.add_column(col, justify="right")
        for r in result["thresholds"]:
            prec = r["precision_of_skip"]
            t.add_row(
                f"{r['threshold']:g}",
                f"{r['skipped']} ({r['skipped_share']:.0%})",
                f"{r['enhanceable_lost']} ({r['enhanceable_lost_share']:.0%})",
                "–" if prec is None else f"{prec:.0%}",
            )
        console.print(t)

    app.add_typer(sub, name="prefilter")
