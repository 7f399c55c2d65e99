"""What a search run will cost, before it is paid for, and again from its own rates.

Before the run (:func:`forecast_run`) the search's calls are counted from its settings, each
question's own prompts (rendered as they will be sent, so question length counts) and the
providers' prices. What no setting says (how many questions the target already fails, how
often a distracted child fools it, how long its replies are) comes from :data:`PRIORS`; the
range spans a target easy to fool (the search stops early) to one hard to fool (every expansion
is spent). Tokens are counted at 4 characters a token, as the simulated server does; real
tokenizers differ by some percent.

Once a run has finished ``MIN_FINISHED`` questions (:func:`forecast_from_store`), the forecast is
the cost already paid plus the run's own mean cost per finished question times the questions
left, with a range from the spread of those costs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cdvkit.data.question import Question
from cdvkit.search.build import proposer_spec
from cdvkit.search.forecast_requests import QuestionRequests, question_requests
from cdvkit.search.goals_multi import target_roles
from cdvkit.store.status import UNFINISHED, QuestionStatus
from cdvkit.tasks import shape_of

CHARS_PER_TOKEN = 4
MIN_FINISHED = 20  # finished questions before the run's own rates replace the priors
Z = 1.96  # the range's width, in standard errors


@dataclass(frozen=True)
class Priors:
    """What the forecast assumes where the settings say nothing (documented in the README)."""

    original_failed: float = 0.15  # share of questions the target gets wrong undistracted
    # P(a child fools the target): low / mid / high. A low rate means more expansions, so it
    # gives the HIGH end of the cost range.
    fooled: tuple[float, float, float] = (0.03, 0.12, 0.35)
    undecided: float = 0.05  # share of replies the local reader cannot read
    # A step-by-step reply's length, low / mid / high, by task shape (each shape's own prior,
    # TaskShape.reply_tokens, unless set here).
    reply_tokens: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    sentence_tokens: int = 30  # a distracting sentence, as written and as added to a node
    judge_tokens: int = 40
    extractor_tokens: int = 3
    wrong_answers_tokens: int = 30


PRIORS = Priors()


@dataclass
class RoleForecast:
    """One role's forecast: calls and cost as (low, mid, high); tokens at mid."""

    role: str
    model: str
    calls: tuple[float, float, float]
    prompt_tokens: float
    completion_tokens: float
    cost: tuple[float, float, float]
    priced: bool  # False: the model has no price (local, or unknown), so its cost reads 0


@dataclass
class Forecast:
    """A run's forecast, per role and in total; ``basis`` says what it rests on."""

    questions: int
    basis: str  # "settings" (before the run) | "run" (the run's own rates)
    roles: dict[str, RoleForecast]
    finished: int = 0  # questions it was measured on (basis "run")
    spent_cost: float = 0.0  # already paid (basis "run", or a resumed run)
    spent_calls: int = 0
    # Whether the target gives choice probabilities is known only once it is first asked; until
    # then the middle assumes it does, and this is the middle (calls, cost) if it does not.
    without_logprobs: tuple[float, float] | None = None
    # Questions a saved prefilter leaves out (known before any call, so not forecast), and
    # whether --prefilter auto may leave out more (it learns which only as the run goes).
    skipped: int = 0
    auto_prefilter: bool = False

    @property
    def calls(self) -> tuple[float, float, float]:
        return _sum3(r.calls for r in self.roles.values())

    @property
    def cost(self) -> tuple[float, float, float]:
        return _sum3(r.cost for r in self.roles.values())

    @property
    def unpriced(self) -> list[str]:
        return [r.role for r in self.roles.values() if not r.priced and r.calls[1] > 0]

    def line(self) -> str:
        """One line: calls and cost, each with its range, and what the forecast rests on."""
        lo, mid, hi = self.calls
        clo, cmid, chi = self.cost
        where = (
            "from the settings and priors"
            if self.basis == "settings"
            else f"from this run's first {self.finished} finished questions"
        )
        text = (
            f"forecast: {mid:,.0f} calls ({lo:,.0f}-{hi:,.0f}), USD {cmid:.2f} "
            f"({clo:.2f}-{chi:.2f}) for {self.questions} questions, {where}"
        )
        if self.skipped:
            text += f"; {self.skipped} of them skipped by the prefilter (not counted)"
        if self.auto_prefilter:
            text += "; counts every question as searched (--prefilter auto skips only as it learns)"
        if self.without_logprobs is not None:
            calls, cost = self.without_logprobs
            text += (
                f"; if the target gives no log-probs: {calls:,.0f} calls, USD {cost:.2f} "
                "(--scoring sample forecasts that alone)"
            )
        if self.unpriced:
            text += f"; no price for {', '.join(self.unpriced)} (counted as 0)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "basis": self.basis,
            "finished": self.finished,
            "calls": list(self.calls),
            "cost": list(self.cost),
            "spent_calls": self.spent_calls,
            "spent_cost": self.spent_cost,
            "without_logprobs": list(self.without_logprobs) if self.without_logprobs else None,
            "skipped": self.skipped,
            "auto_prefilter": self.auto_prefilter,
            "roles": {k: asdict(v) for k, v in self.roles.items()},
        }


def _sum3(items: Any) -> tuple[float, float, float]:
    out = [0.0, 0.0, 0.0]
    for t in items:
        for i in range(3):
            out[i] += t[i]
    return out[0], out[1], out[2]


def _tokens(req: Any) -> int:
    return math.ceil(sum(len(c) for _, c in req.messages) / CHARS_PER_TOKEN)


def expected_expansions(branching: int, fooled: float, max_expansions: int, max_good: int) -> float:
    """E[expansions] of one question: the search stops at ``max_good`` examples or
    ``max_expansions``; after k expansions its examples are Binomial(branching * k, fooled)."""
    total = 0.0
    for k in range(max_expansions):
        n = branching * k
        # P(fewer than max_good examples among n children): the search goes on.
        total += sum(
            math.comb(n, j) * fooled**j * (1 - fooled) ** (n - j)
            for j in range(min(max_good, n + 1))
        )
    return total


@dataclass
class _Counts:
    """Calls and tokens of one role, summed over questions."""

    calls: float = 0.0
    prompt: float = 0.0
    completion: float = 0.0

    def add(self, calls: float, prompt_per_call: float, completion_per_call: float) -> None:
        self.calls += calls
        self.prompt += calls * prompt_per_call
        self.completion += calls * completion_per_call


def _aims(q: Question, cfg: Any) -> int:
    """Wrong answers aimed at per expansion: every wrong option, or --wrong-answers."""
    return cfg.wrong_answers if q.free_form else max(1, len(q.choices) - 1)


def _question_counts(
    q: Question,
    reqs: QuestionRequests,
    cfg: Any,
    fooled: float,
    reply: int,
    exact_guided: bool,
    priors: Priors,
) -> dict[str, _Counts]:
    """Expected calls and tokens per role for one question (its requests ``reqs``) at a child
    fooling rate and a reply length."""
    free = q.free_form
    aims = _aims(q, cfg)
    rounds = cfg.proposals  # distractions per wrong answer at each expansion, in rounds
    branching = aims * rounds
    n = cfg.samples
    base = _tokens(reqs.target)
    # No reply runs past its limit (--max-tokens), however long the model would go on.
    reply = min(reply, reqs.target.max_tokens)
    expansions = expected_expansions(branching, fooled, cfg.max_expansions, cfg.max_good)
    children = branching * expansions
    candidates = children * fooled
    p_fail = priors.original_failed
    counts: dict[str, _Counts] = {}

    def role(name: str) -> _Counts:
        return counts.setdefault(name, _Counts())

    per_sampled = 1 if cfg.batch_samples else n
    sampled_completion = reply * n / per_sampled
    # A child carries about one more sentence per level; depth averages near 2.
    child_prompt = base + 1.5 * priors.sentence_tokens
    searched = 1 - p_fail
    sampled_nodes = 0.0
    # Every target is asked about every node (a multi-target run: each under its own roles).
    for target, verify, _ in target_roles(cfg.targets):
        if exact_guided:
            role(target).add(1 + searched * children, child_prompt, 1)
            role(verify).add(
                per_sampled * (1 + searched * candidates), child_prompt, sampled_completion
            )
            sampled_nodes += 1 + searched * candidates
        else:
            role(target).add(
                per_sampled * (1 + searched * children), child_prompt, sampled_completion
            )
            sampled_nodes += 1 + searched * children
    if proposer_spec(cfg)[0] == "llm":
        if free:
            role("proposer").add(searched, base, priors.wrong_answers_tokens)
        per_expansion = rounds if reqs.batched else branching
        out = priors.sentence_tokens * (aims if per_expansion == rounds else 1)
        role("proposer").add(searched * expansions * per_expansion, _tokens(reqs.proposer), out)
    if cfg.judge:
        judged = candidates + max(expansions - 1, 0) if cfg.judge_last else children
        role("judge").add(
            searched * judged,
            _tokens(reqs.judge) + priors.sentence_tokens,
            min(priors.judge_tokens, reqs.judge.max_tokens),
        )
    if cfg.extractor:
        share = 1.0 if cfg.always_extract else priors.undecided
        role("extractor").add(
            sampled_nodes * n * share, child_prompt + reply, priors.extractor_tokens
        )
    return counts


def forecast_run(
    cfg: Any,
    questions: list[Question],
    prices: dict[str, tuple[float, float] | None],
    *,
    exact_guided: bool | None = False,
    models: dict[str, str] | None = None,
    priors: Priors = PRIORS,
) -> Forecast:
    """The forecast of searching ``questions`` under ``cfg`` before anything is paid.

    ``prices``: USD per million (input, output) tokens by role, None where unpriced;
    ``exact_guided``: the search scores nodes by choice probabilities (``--scoring auto`` on a
    backend with log-probs, or ``exact``); None: it may (a server that has not said whether it
    gives log-probs): the middle assumes it does, the range covers both."""
    # A question's requests are the same at every level and either guidance: built once.
    reqs = [question_requests(q, cfg, _aims(q, cfg) * cfg.proposals) for q in questions]
    guided = _levels(cfg, questions, reqs, exact_guided is not False, priors)
    other = _levels(cfg, questions, reqs, False, priors) if exact_guided is None else guided
    roles: dict[str, RoleForecast] = {}
    for role in dict.fromkeys([*guided[1], *other[1]]):
        price = prices.get(_paid_as(role))
        mine = [lv.get(role, _Counts()) for lv in guided]
        both = mine + [lv.get(role, _Counts()) for lv in other]
        roles[role] = RoleForecast(
            role,
            (models or {}).get(_paid_as(role), ""),
            _spread(mine[1].calls, [c.calls for c in both]),
            mine[1].prompt,
            mine[1].completion,
            _spread(_usd(mine[1], price), [_usd(c, price) for c in both]),
            price is not None,
        )
    fc = Forecast(len(questions), "settings", roles)
    if exact_guided is None:
        fc.without_logprobs = (
            sum(c.calls for c in other[1].values()),
            sum(_usd(c, prices.get(_paid_as(r))) for r, c in other[1].items()),
        )
    return fc


def _paid_as(role: str) -> str:
    """The role whose model (and price) a role's calls use: confirmations are the target's."""
    return "target" + role[len("verify") :] if role.startswith("verify") else role


def _usd(c: _Counts, price: tuple[float, float] | None) -> float:
    return (c.prompt * price[0] + c.completion * price[1]) / 1e6 if price else 0.0


def _levels(
    cfg: Any,
    questions: list[Question],
    reqs: list[QuestionRequests],
    exact_guided: bool,
    priors: Priors,
) -> list[dict[str, _Counts]]:
    """Calls and tokens per role at three levels: a target fooled easily that answers briefly
    (the cheapest), the priors' middle, and a target hard to fool that answers at length."""
    levels: list[dict[str, _Counts]] = []
    for level, fooled in enumerate(reversed(priors.fooled)):
        total: dict[str, _Counts] = {}
        for q, r in zip(questions, reqs, strict=True):
            guided = exact_guided and not q.free_form
            reply = priors.reply_tokens.get(q.task) or shape_of(q).reply_tokens
            counts = _question_counts(q, r, cfg, fooled, reply[level], guided, priors)
            for role, c in counts.items():
                t = total.setdefault(role, _Counts())
                t.calls += c.calls
                t.prompt += c.prompt
                t.completion += c.completion
        levels.append(total)
    return levels


def _spread(mid: float, values: list[float]) -> tuple[float, float, float]:
    """(low, mid, high): the range over every level (a role need not cost most where the search
    does: a target fooled easily needs more confirmations)."""
    return min([mid, *values]), mid, max([mid, *values])


FINISHED = (QuestionStatus.DONE, QuestionStatus.ORIGINAL_FAILED)


def forecast_from_store(store: Any, min_finished: int = MIN_FINISHED) -> Forecast | None:
    """The forecast from the run's own rates, once ``min_finished`` questions have finished:
    what is paid, plus the mean cost (and calls) per finished question times the questions
    left; None before that."""
    statuses = {d["id"]: d["status"] for d in store.questions()}
    finished = [qid for qid, s in statuses.items() if s in FINISHED]
    if len(finished) < min_finished:
        return None
    left = sum(1 for s in statuses.values() if s in UNFINISHED)
    per_q = store.usage_by_question("search")
    usage = store.usage_by_role("search")
    roles: dict[str, RoleForecast] = {}
    for role, u in usage.items():
        calls = [per_q.get(qid, {}).get(role, {}).get("calls", 0.0) for qid in finished]
        costs = [per_q.get(qid, {}).get(role, {}).get("cost", 0.0) for qid in finished]
        roles[role] = RoleForecast(
            role,
            "",
            _projected(float(u["calls"]), calls, left),
            float(u["prompt_tokens"] or 0),
            float(u["completion_tokens"] or 0),
            _projected(float(u["cost"] or 0.0), costs, left),
            True,
        )
    return Forecast(
        len(statuses),
        "run",
        roles,
        finished=len(finished),
        spent_cost=float(sum(float(u["cost"] or 0.0) for u in usage.values())),
        spent_calls=int(sum(u["calls"] for u in usage.values())),
    )


def _projected(spent: float, per_question: list[float], left: int) -> tuple[float, float, float]:
    """spent + left * mean, with a range from the spread of the per-question values (the sum of
    ``left`` draws, and the uncertainty of the mean itself)."""
    k = len(per_question)
    mean = sum(per_question) / k
    var = sum((x - mean) ** 2 for x in per_question) / max(k - 1, 1)
    sd = math.sqrt(var)
    half = Z * sd * (math.sqrt(left) + left / math.sqrt(k))
    mid = spent + left * mean
    return max(spent, mid - half), mid, mid + half


__all__ = [
    "MIN_FINISHED",
    "PRIORS",
    "Forecast",
    "Priors",
    "RoleForecast",
    "expected_expansions",
    "forecast_from_store",
    "forecast_run",
]


def role_prices(cfg: Any) -> tuple[dict[str, tuple[float, float] | None], bool | None]:
    """Each role's price (USD per million input, output tokens; None: unknown) and whether the
    search is guided by choice probabilities (None: it may be, see ``forecast_run``), read from
    the backends as they would be built, with no request sent: a missing key or server does
    not stop an estimate."""
    import os

    from cdvkit.models.registry import provider_of
    from cdvkit.search.build import load_role_model, role_models

    prices: dict[str, tuple[float, float] | None] = {}
    guided: bool | None = cfg.scoring == "exact"
    for role, spec in role_models(cfg).items():
        info = provider_of(spec)
        if info.local:
            # Computed on this machine: free, and (hf, embed) scored from choice probabilities.
            prices[role] = (0.0, 0.0)
            guided = guided or (role == "target" and cfg.scoring == "auto")
            continue
        extra: dict[str, Any] = {}
        if info.key_env and not os.environ.get(info.key_env):
            extra["api_key"] = "estimate-only"  # never sent: the estimate calls nothing
        if info.takes_base_url and not (cfg.base_url or os.environ.get("OPENAI_BASE_URL")):
            extra["base_url"] = "http://127.0.0.1:1/v1"
        try:
            model = load_role_model(cfg, role, spec, **extra)
        except Exception:  # an unknown model or missing SDK: priced as unknown
            prices[role] = None
            continue
        prices[role] = model.price_per_mtok
        if role == "target" and cfg.scoring == "auto" and model.supports_choice_probs:
            # A remote server says whether it gives log-probs only when first asked.
            guided = None
        # Nothing to close: backends open their connections on their first request.
    return prices, guided
