"""civicgrid's shared platform: the plumbing every service stands on.

Nothing here knows about cases, grids or approvals: only events, streams, topics,
principals and HTTP. Services depend on this package; it depends on no service.
"""
