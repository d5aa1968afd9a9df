"""The HTTP edge every service shares: the app factory (web.app.create_app), problem+json
(web.problems.Problem), the request size limit, Idempotency-Key and health endpoints."""
