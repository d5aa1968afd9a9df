"""The Open311 service request both Open311 test modules post (a resident reporting a missing
manhole cover in the demo district), with personal fields that must never leak back out."""
from civicgrid_intake.entrypoints.open311.model import DEMO_API_KEY

FORM = {
    "api_key": DEMO_API_KEY,
    "jurisdiction_id": "320104",
    "service_code": "municipal_works",
    "lat": "32.0301",
    "long": "118.7902",
    "address_string": "淮海路 12 号门口",
    "email": "resident@example.com",
    "phone": "13800000000",
    "first_name": "三",
    "last_name": "张",
    "description": "井盖缺失，夜间危险",
    "media_url": "https://img.example/manhole.jpg",
    "attribute[urgency]": "life_or_property",
}
