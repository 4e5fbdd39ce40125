"""Subscriptions: standing orders for notices, matching of notice versions against them, and durable
delivery (signed webhooks, AMQP queues) with retries, ordering per notice and an SSRF guard."""
