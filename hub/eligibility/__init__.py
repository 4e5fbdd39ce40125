"""Eligibility: the requirement language institutions (and notices) state, and its evaluator, which
answers each requirement met / not met / unknown with the credentials behind it.
See ``docs/eligibility.md``."""

from hub.eligibility.evaluate import (
    CitedCredential,
    CitedEvidence,
    EligibilityAnswer,
    RequirementVerdict,
    Verdict,
    combine_all,
    combine_any,
    evaluate,
)
from hub.eligibility.language import (
    MAX_DEPTH,
    MAX_REQUIREMENTS,
    FieldProblem,
    Requirement,
    RequirementError,
    dump_requirements,
    parse_requirements,
    requirements_json_schema,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_REQUIREMENTS",
    "CitedCredential",
    "CitedEvidence",
    "EligibilityAnswer",
    "FieldProblem",
    "Requirement",
    "RequirementError",
    "RequirementVerdict",
    "Verdict",
    "combine_all",
    "combine_any",
    "dump_requirements",
    "evaluate",
    "parse_requirements",
    "requirements_json_schema",
]
