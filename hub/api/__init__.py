"""The HTTP API: ``app`` (factory, router list), ``deps`` (auth, scopes, hub/bus/uow aliases),
``problems`` (RFC 9457 errors), ``middleware`` (request id, access log, latency, body cap), ``probes``
(readiness registry, scrape-time gauges) and ``routes/`` (one module per resource)."""
