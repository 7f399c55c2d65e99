"""What a registered part's factory gets to build itself: the run's settings, and a client for
any model it needs (paid, cached and budgeted like every other call of the run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdvkit.models.client import RoleClient


@dataclass(frozen=True)
class BuildContext:
    # The run's SearchConfig (typed loosely: the config validates part names against these
    # parts' registries, so the parts must not import it back).
    cfg: Any
    # client(role, "provider/model"): the role names the calls in the run's cost per role.
    client: Callable[[str, str], RoleClient]

    def role(self, name: str) -> RoleClient:
        """The client of a role the part declared (``roles=("critic",)``), with the model the
        run names for it (``--role critic=provider/model``) and its ``[roles.critic]`` options."""
        models = getattr(self.cfg, "role", None) or {}
        if name not in models:
            raise ValueError(f"no model for the role {name!r}: pass --role {name}=provider/model")
        return self.client(name, models[name])
