"""Publish once: the unified bid notice and its versions, the commands that publish, amend, cancel and
import them (inbound formats in ``formats/``), the read side (``queries``) and the OCDS and Atom output.

``model``, ``commands``, ``events``, ``codes`` and ``idempotency`` are plain Python; persistence goes
through the repositories of :class:`hub.notices.repository.NoticesUnitOfWork`.
"""
