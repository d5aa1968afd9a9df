"""intake's HTTP API (FastAPI routers), every route under a JWT with jurisdiction scope."""
