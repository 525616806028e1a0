"""Webhooks: signed HTTP pushes of what changed, for API clients (SPEC, issue "Webhooks").

- `events`: the receivers of the lower apps' change signals; they write the outbox
  (`WebhookMessage` and one `WebhookDelivery` per subscribed endpoint) in the transaction of
  the change, so an event exists exactly when its change committed.
- `relay`: the worker's delivery loop (claim due deliveries with a lease, send, record).
- `transport`: the HTTP client: the address check at connect time, no redirects, a timeout,
  a bounded response read.
- `signing`: Standard Webhooks headers (standardwebhooks), both secrets while one rotates.
- `services`: endpoints (create, change, rotate, remove), redelivery and test events.
"""
