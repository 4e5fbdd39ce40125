"""Register once: suppliers, their credentials with provenance, and keeping those fresh."""
