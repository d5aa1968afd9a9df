"""intake: the one-window acceptance centre (一口受理).

Residents hand in any affair or complaint once, at one window; the departments collaborate
behind it. Layers, dependencies pointing inwards:

- domain/       pure rules and aggregates: identity numbers, the affairs catalogue, cases,
                complaints, routing, ratings (no I/O, no framework)
- application/  command handlers and projections
- adapters/     event store, Kafka, encryption of personal data
- entrypoints/  the FastAPI app (port 8001), Open311, consumers
"""
