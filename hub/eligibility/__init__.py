"""Eligibility: the requirement language institutions (and notices) state, and its evaluator, which
answers each requirement met / not met / unknown with the credentials behind it.
See ``docs/eligibility.md``."""
