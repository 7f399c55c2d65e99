"""Every kind of part chosen by name, with its registry and how a user names one.

``cdv parts`` lists them all from here, and the contract tests (tests/test_contracts.py) run
over every part of every kind here, so a part registered anywhere (a plugin's included) is
listed and tested the moment it exists. A new registry belongs in this list: a test finds every
``Registry(...)`` in the package and fails on one missing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdvkit.registry import Registry


@dataclass(frozen=True)
class PartKind:
    kind: str  # as `cdv parts` names it
    used_as: str  # where a user names one
    registry: Registry[Any]


def part_kinds() -> list[PartKind]:
    """Every kind of registered part, in the order `cdv parts` lists them."""
    # Imported here: listing the kinds needs every package that defines parts.
    from cdvkit.data.datasets import DATASETS
    from cdvkit.executors import EXECUTORS
    from cdvkit.export.base import EXPORTERS
    from cdvkit.models.registry import PROVIDERS
    from cdvkit.prompts import DEFENSES
    from cdvkit.search.constraints import CONSTRAINTS
    from cdvkit.search.preset import PRESETS
    from cdvkit.search.proposers import PROPOSERS
    from cdvkit.search.strategies import STRATEGIES
    from cdvkit.tasks import SHAPES

    return [
        PartKind("proposer", "--proposer", PROPOSERS),
        PartKind("constraint", "--constraint", CONSTRAINTS),
        PartKind("strategy", "--strategy", STRATEGIES),
        PartKind("provider", "provider/model", PROVIDERS),
        PartKind("export format", "cdv export --format", EXPORTERS),
        PartKind("defense", "cdv evaluate --defense", DEFENSES),
        PartKind("preset", "--preset", PRESETS),
        PartKind("dataset", "--data", DATASETS),
        PartKind("task shape", "--task", SHAPES),
        PartKind("executor", "--executor", EXECUTORS),
    ]
