"""Answering an institution's requirements from a supplier's credentials: met, not met or unknown, each
with the credentials behind it.

Why three verdicts and never a boolean: a missing, pending or stale credential is not evidence that a
supplier fails a requirement, and treating it as such would exclude suppliers for the hub's own
outages; treating it as success would admit them on nothing. ``unknown`` says "ask again after the
refresh" and its reason says why. Combinators use three-valued (Kleene) logic for the same reason.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hub.eligibility import rules
from hub.eligibility.language import AllOf, AnyOf, BusinessNotClosed, Requirement, StatedCondition
from hub.eligibility.rules import Judgement, Rule, Verdict
from mappings.credentials import Credential

__all__ = [
    "CitedCredential",
    "CitedEvidence",
    "EligibilityAnswer",
    "RequirementVerdict",
    "Verdict",
    "combine_all",
    "combine_any",
    "evaluate",
]


def combine_all(verdicts: Iterable[Verdict]) -> Verdict:
    """all_of: met if every part is met, not met if any part is not met, otherwise unknown."""
    seen = set(verdicts)
    if Verdict.NOT_MET in seen:
        return Verdict.NOT_MET
    return Verdict.UNKNOWN if Verdict.UNKNOWN in seen else Verdict.MET


def combine_any(verdicts: Iterable[Verdict]) -> Verdict:
    """any_of: met if any part is met, not met if every part is not met, otherwise unknown."""
    seen = set(verdicts)
    if Verdict.MET in seen:
        return Verdict.MET
    return Verdict.UNKNOWN if Verdict.UNKNOWN in seen or not seen else Verdict.NOT_MET


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CitedEvidence(_Frozen):
    system: str
    identifier: str
    fetched_at: AwareDatetime
    response_sha256: str | None
    raw_sha256: str | None
    pointer: str


class CitedCredential(_Frozen):
    """A credential the evaluator looked at; ``verdict`` is None when it was set aside (another scheme,
    another country, superseded by a later fetch) and ``note`` says why."""

    type: str
    subject: str
    source: str
    status: str
    valid_from: AwareDatetime | None
    valid_until: AwareDatetime | None  # exclusive, as stored
    attributes: dict[str, Any]  # the attributes the rule read, not the whole record
    evidence: CitedEvidence
    verdict: Verdict | None
    note: str
    decisive: bool


class RequirementVerdict(_Frozen):
    path: str  # "requirements.1.requirements.0", the same path parse errors use
    id: str | None
    kind: str
    label: str | None
    parameters: dict[str, Any]
    verdict: Verdict
    reason: str
    credentials: list[CitedCredential]
    parts: list[RequirementVerdict]  # combinators only


class EligibilityAnswer(_Frozen):
    on: AwareDatetime  # the evaluation instant the verdicts are about
    evaluated_at: AwareDatetime
    verdict: Verdict  # all_of over the top-level requirements; the list below is the answer
    summary: str
    counts: dict[str, int]  # top-level requirements per verdict
    requirements: list[RequirementVerdict]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# Why a credential the hub holds is not used: its identifier's control is not proven (docs/identifier-control.md).
CONTROL_NOT_PROVEN = "control of identifier not proven"


@dataclass(frozen=True)
class _Context:
    instant: datetime
    credentials: tuple[Credential, ...]
    pending_systems: frozenset[str]
    unproven_types: frozenset[str] = frozenset()


def evaluate(
    requirements: Sequence[Requirement],
    credentials: Iterable[Credential],
    *,
    on: date | datetime,
    now: datetime,
    pending_systems: Collection[str] = (),
    unproven_types: Collection[str] = (),
) -> EligibilityAnswer:
    """Judge each requirement at the instant ``on`` from one supplier's credentials.

    ``on`` as a date means the start of that day (UTC), or ``now`` when it is today. ``pending_systems``
    names upstream systems whose first fetch has not succeeded, so that "missing" can say "pending".
    ``unproven_types`` names the credential types the hub holds but may not use because control of the
    identifier they were fetched for is not proven (those credentials are not passed in at all), so that
    "missing" says why: a requirement resting on them is ``unknown``, never met.
    """
    now = _aware(now, "now")
    context = _Context(_resolve(on, now), tuple(credentials), frozenset(pending_systems), frozenset(unproven_types))
    verdicts = [_judge(requirement, f"requirements.{index}", context) for index, requirement in enumerate(requirements)]
    overall = combine_all(verdict.verdict for verdict in verdicts)
    counts = {v.value: sum(1 for item in verdicts if item.verdict is v) for v in Verdict}
    return EligibilityAnswer(
        on=context.instant,
        evaluated_at=now,
        verdict=overall,
        summary=_all_reason(overall, verdicts) if verdicts else "no requirements stated",
        counts=counts,
        requirements=verdicts,
    )


def _aware(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return when


def _resolve(on: date | datetime, now: datetime) -> datetime:
    if isinstance(on, datetime):
        return _aware(on, "on")
    if on == now.astimezone(UTC).date():
        return now
    return datetime.combine(on, time.min, UTC)


def _judge(requirement: Requirement, path: str, context: _Context) -> RequirementVerdict:
    base = {
        "path": path,
        "id": requirement.id,
        "kind": requirement.kind,
        "label": requirement.label,
        "parameters": requirement.model_dump(mode="json", exclude_none=True, exclude=_NOT_PARAMETERS),
    }
    if isinstance(requirement, AllOf | AnyOf):
        parts = [
            _judge(part, f"{path}.requirements.{index}", context) for index, part in enumerate(requirement.requirements)
        ]
        if isinstance(requirement, AllOf):
            verdict = combine_all(part.verdict for part in parts)
            reason = _all_reason(verdict, parts)
        else:
            verdict = combine_any(part.verdict for part in parts)
            reason = _any_reason(verdict, parts)
        return RequirementVerdict(**base, verdict=verdict, reason=reason, credentials=[], parts=parts)
    if isinstance(requirement, StatedCondition):
        details = ", ".join(f"{key}: {value}" for key, value in sorted(requirement.details.items()))
        reason = f"condition {requirement.condition!r} is stated by the source"
        reason += f" ({details})" if details else ""
        reason += "; no credential the hub holds can decide it, so it needs a manual check"
        return RequirementVerdict(**base, verdict=Verdict.UNKNOWN, reason=reason, credentials=[], parts=[])
    groups = rules.rules_for(requirement, context.instant)
    outcomes = [_group(rule, context) for rule in groups]
    present = [outcome for outcome in outcomes if outcome.judged]
    cited = [credential for outcome in outcomes for credential in outcome.cited]
    if not present:
        verdict, reason = Verdict.UNKNOWN, _missing_reason(requirement, groups, outcomes, context)
    else:
        verdict = combine_all(outcome.verdict for outcome in present)
        reasons = [outcome.reason for outcome in present if outcome.verdict is verdict]
        reason = "; ".join(reasons)
    return RequirementVerdict(**base, verdict=verdict, reason=reason, credentials=cited, parts=[])


_NOT_PARAMETERS = {"kind", "id", "label", "requirements"}


@dataclass(frozen=True)
class _GroupOutcome:
    """One rule's outcome over all the credentials of its types: the best of them (Kleene OR)."""

    judged: bool
    verdict: Verdict
    reason: str
    cited: list[CitedCredential]
    set_aside: int


def _group(rule: Rule, context: _Context) -> _GroupOutcome:
    pool = sorted(
        (c for c in context.credentials if c.type in rule.types and rule.considers(c)),
        key=lambda credential: credential.evidence.fetched_at,
        reverse=True,
    )
    latest: dict[tuple[str, ...], Credential] = {}
    notes: list[tuple[Credential, Judgement | None, str]] = []
    for credential in pool:
        key = rules.record_key(credential)
        if key in latest:
            notes.append(
                (credential, None, f"superseded by the fetch of {rules.moment(latest[key].evidence.fetched_at)}")
            )
            continue
        latest[key] = credential
        mismatch = rule.mismatch(credential)
        if mismatch is not None:
            notes.append((credential, None, mismatch))
            continue
        judgement = rules.usable(credential, rule.noun, context.instant) or rule.judge(credential)
        notes.append((credential, judgement, judgement.reason))
    judged = [(credential, judgement) for credential, judgement, _ in notes if judgement is not None]
    if not judged:
        cited = [_cite(credential, None, note, rule, decisive=False) for credential, _, note in notes]
        return _GroupOutcome(False, Verdict.UNKNOWN, "", cited, len(notes))
    verdict = combine_any(judgement.verdict for _, judgement in judged)
    decisive = _decisive(verdict, judged)
    reason = "; ".join(dict.fromkeys(judgement.reason for credential, judgement in judged if credential in decisive))
    cited = [
        _cite(credential, judgement, note, rule, decisive=credential in decisive)
        for credential, judgement, note in notes
    ]
    return _GroupOutcome(True, verdict, reason, cited, len(notes) - len(judged))


def _decisive(verdict: Verdict, judged: list[tuple[Credential, Judgement]]) -> list[Credential]:
    """For met, the single best credential (valid longest, then fetched last); otherwise every
    credential that shares the verdict, since together they are why nothing better was found."""
    matching = [credential for credential, judgement in judged if judgement.verdict is verdict]
    if verdict is not Verdict.MET:
        return matching
    far_future = datetime.max.replace(tzinfo=UTC)
    best = max(matching, key=lambda c: (c.valid_until or far_future, c.evidence.fetched_at))
    return [best]


def _cite(
    credential: Credential, judgement: Judgement | None, note: str, rule: Rule, *, decisive: bool
) -> CitedCredential:
    copied = {name: getattr(credential, name) for name in ("type", "subject", "source", "status", "valid_from",
                                                          "valid_until")}
    cited = {name: credential.attributes[name] for name in rule.cited_attributes if name in credential.attributes}
    return CitedCredential(
        **copied,
        attributes=cited,
        evidence=CitedEvidence.model_validate(credential.evidence, from_attributes=True),
        verdict=judgement.verdict if judgement is not None else None,
        note=note,
        decisive=decisive,
    )


def _missing_reason(
    requirement: Requirement, groups: Sequence[Rule], outcomes: Sequence[_GroupOutcome], context: _Context
) -> str:
    wanted = " or ".join(rule.noun for rule in groups)
    set_aside = sum(outcome.set_aside for outcome in outcomes)
    types = {credential_type for rule in groups for credential_type in rule.types}
    if types & context.unproven_types:
        return f"{CONTROL_NOT_PROVEN}: the {wanted} on record counts once the supplier proves control"
    reason = f"no {wanted} on record"
    if set_aside:
        reason += f" ({set_aside} other {'credential' if set_aside == 1 else 'credentials'} considered)"
    pending = sorted(
        system
        for system in context.pending_systems
        if rules.SYSTEM_TYPES.get(system) in types or system not in rules.SYSTEM_TYPES
    )
    if pending:
        reason += f"; fetch still pending from {', '.join(pending)}"
    if isinstance(requirement, BusinessNotClosed):
        reason += " (needs an NTS tax status or a company registration)"
    return reason


def _name(part: RequirementVerdict) -> str:
    return part.id or part.path


def _listing(parts: Sequence[RequirementVerdict], verdict: Verdict) -> tuple[int, str]:
    chosen = [part for part in parts if part.verdict is verdict]
    return len(chosen), "; ".join(f"{_name(part)}: {part.reason}" for part in chosen)


def _all_reason(verdict: Verdict, parts: Sequence[RequirementVerdict]) -> str:
    if verdict is Verdict.MET:
        return f"all {len(parts)} met"
    count, listing = _listing(parts, verdict)
    return f"{count} of {len(parts)} {verdict.value.replace('_', ' ')} ({listing})"


def _any_reason(verdict: Verdict, parts: Sequence[RequirementVerdict]) -> str:
    if verdict is Verdict.MET:
        return f"met by {', '.join(_name(part) for part in parts if part.verdict is Verdict.MET)}"
    count, listing = _listing(parts, verdict)
    if verdict is Verdict.NOT_MET:
        return f"none of {len(parts)} met ({listing})"
    return f"none of {len(parts)} met, {count} unknown ({listing})"
