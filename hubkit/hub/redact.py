"""Keep tokens and credential values out of logs, exception texts and reprs.

Two layers, used together by :mod:`hubkit.hub.client`:

- *known* secrets (the bearer token, the credential values of the request in flight) are
  replaced wherever they occur, whatever surrounds them;
- *shapes* that look secret (``Bearer …``, ``sk-…`` keys, ``api_key=…`` query values, JSON
  fields named like secrets) are masked even when nobody told us the value.

>>> redact("Authorization: Bearer abc.def-123")
'Authorization: Bearer ***'
>>> redact("check HUBKIT_HUB_TOKEN: it must be an admin key; token: abc123secret")
'check HUBKIT_HUB_TOKEN: it must be an admin key; token: ***'
>>> redact("key sk-proj-abcdefghijklmnop1234 refused")
'key sk-p***1234 refused'
>>> redact("Invalid baseUrl https://admin:pw@api.example.com/v1")
'Invalid baseUrl https://***@api.example.com/v1'
>>> redact_url("http://u:p@hub.local/api/x?api_key=s3cr3t&page=2")
'http://***@hub.local/api/x?api_key=***&page=2'
>>> redact_mapping({"name": "main", "value": {"api_key": "sk-1"}})
{'name': 'main', 'value': '***'}
"""

from __future__ import annotations

# The code lives at the foundation (hubkit._urls) so the domain can mask a URL it shows
# without importing the hub client; this module stays the hub's public door to it.
from hubkit._urls import (
    MASK,
    SECRET_NAMES,
    is_secret_name,
    redact,
    redact_headers,
    redact_mapping,
    redact_url,
)

__all__ = [
    "MASK",
    "SECRET_NAMES",
    "is_secret_name",
    "redact",
    "redact_headers",
    "redact_mapping",
    "redact_url",
]
