"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) with FixMyStreet's
`servicerequestupdates` extension: residents' apps report problems, an Open311 request
becomes a complaint (channel open311).

- `model`: the wire model (services, attributes, requests, updates, errors) and the
  jurisdiction this endpoint serves;
- `parsing`: POST form and GET query parsing with the specification's validation (pure);
- `render`: XML and JSON bodies exactly as the specification shows them (pure);
- `mapping`: complaints ↔ Open311 (service list, request views, status, updates);
- `router`: `open311_router(port, ...)`, the FastAPI routes under /open311/v2.

Jurisdiction: this endpoint serves one jurisdiction, the demo district Qinhuai (320104).
Its jurisdiction_id is the district code `320104`; `qinhuai.nanjing.gov.cn` (the
specification suggests a web domain) is accepted as an alias. As the specification allows
for single-jurisdiction endpoints, jurisdiction_id is optional; an unknown one is a 404.
The demo api_key on the local stack is `demo-open311-key`.
"""
