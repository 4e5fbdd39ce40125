"""Publish once: the unified bid notice, its OCDS 1.1 form, the PPS input mapping and subscription matching.

Pure domain code — no I/O beyond reading the declarative PPS mapping and the OCDS schemas on request.
"""
