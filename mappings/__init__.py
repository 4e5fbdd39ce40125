"""Declarative mappings from upstream payloads to canonical credentials."""
