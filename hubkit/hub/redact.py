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

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hubkit._urls import mask_url

MASK = "***"

#: Field / parameter / header names whose values are secret wherever they appear.
SECRET_NAMES: frozenset[str] = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "credentialvalue",
        "password",
        "secret",
        "secret_access_key",
        "token",
        "value",
        "x-api-key",
    }
)

# Secrets shorter than this are not searched for by value: masking every "ab" in a text
# would shred it, and a 3-character "secret" protects nothing anyway.
_MIN_KNOWN = 6

_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# An Authorization header, whatever the length of its credential ("Bearer x" included).
_AUTH_HEADER = re.compile(
    r"""(?ix)
    (["']?(?:proxy-)?authorization["']?\s*[:=]\s*["']?)
    ((?:bearer|basic|token)\s+)?
    ([^\s"',&}]+)
    """
)
# Provider-style keys: OpenAI/Anthropic/DeepSeek "sk-…", xAI "xai-…", AWS access keys.
_KEY_SHAPES = re.compile(r"\b(?:sk|xai|pk|rk)-[A-Za-z0-9_-]{8,}|\bAKIA[0-9A-Z]{12,}")
_JSON_FIELD = re.compile(
    r"""(?ix)
    (["']?(?:api_key|apikey|secret_access_key|access_token|password|secret|token|
             credentialValue)["']?\s*[:=]\s*)
    ("[^"]*"|'[^']*'|[^\s,&}]+)
    """
)
# A URL's user-info anywhere in a text (a hub echoing a baseUrl it refused): "scheme://"
# then no "/", "@" or space up to an "@".
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@\"']+@")
# After "name: " (a colon and a space, as in prose), a short plain word is the sentence
# going on, not a value: "check HUBKIT_HUB_TOKEN: it must be …" keeps its "it". Values
# with digits or symbols, quoted values, "name=value" and words of _MIN_KNOWN letters or
# more are still masked.
_PROSE_WORD = re.compile(rf"[A-Za-z]{{1,{_MIN_KNOWN - 1}}}")


def _is_prose(prefix: str, value: str) -> bool:
    return (
        prefix.rstrip("\"' ").endswith(":")
        and prefix[-1:].isspace()
        and bool(_PROSE_WORD.fullmatch(value))
    )


def _mask_field(match: re.Match[str]) -> str:
    prefix, value = match.group(1), match.group(2)
    if _is_prose(prefix, value):
        return match.group(0)
    return f"{prefix}{_quote_like(value)}"


def _mask_auth(match: re.Match[str]) -> str:
    prefix, scheme, value = match.group(1), match.group(2), match.group(3)
    if scheme is None and _is_prose(prefix, value):
        return match.group(0)
    return f"{prefix}{scheme or ''}{MASK}"


def _mask_shape(match: re.Match[str]) -> str:
    text = match.group(0)
    return f"{text[:4]}{MASK}{text[-4:]}" if len(text) >= 16 else MASK


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with known ``secrets`` and secret-looking shapes masked."""
    if not text:
        return text
    out = text
    known = {v for s in secrets if s and len(s) >= _MIN_KNOWN for v in _spellings(s)}
    # Longest first, so a secret containing another one is masked whole.
    for secret in sorted(known, key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _AUTH_HEADER.sub(_mask_auth, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)
    out = _JSON_FIELD.sub(_mask_field, out)
    out = _KEY_SHAPES.sub(_mask_shape, out)
    out = _URL_USERINFO.sub(rf"\1{MASK}@", out)
    return out


def _spellings(secret: str) -> set[str]:
    """``secret`` as it may appear in a message: raw, and escaped by ``repr`` or JSON.

    A parser's "got {value!r}" or an echoed JSON body spells a value with a quote, a
    backslash or a non-ASCII letter differently from the value itself.
    """
    return {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}


def _quote_like(original: str) -> str:
    if original[:1] in ("'", '"'):
        return f"{original[0]}{MASK}{original[0]}"
    return MASK


def is_secret_name(name: str) -> bool:
    return name.strip().lower() in SECRET_NAMES


def redact_mapping(data: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of a JSON-like value with secret-named fields replaced by ``***``.

    Strings elsewhere still go through :func:`redact`, so a key pasted into a
    ``description`` is masked too.
    """
    known = tuple(secrets)
    if isinstance(data, Mapping):
        return {
            k: MASK if is_secret_name(str(k)) else redact_mapping(v, known) for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_mapping(v, known) for v in data]
    if isinstance(data, str):
        return redact(data, known)
    return data


# "scheme://" then everything up to the last "@" before the path: the user-info.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def redact_url(url: str, secrets: Iterable[str | None] = ()) -> str:
    """The URL with user-info and secret-named query values masked (malformed ones too)."""
    url = mask_url(url) or ""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://u:p@[::1" — unparseable, but its user-info is still masked
        return redact(_USERINFO.sub(rf"\1{MASK}@", url), secrets)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*,:/")
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return redact(rebuilt, secrets)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names kept, secret-looking values masked."""
    return {k: MASK if is_secret_name(k) else redact(v) for k, v in headers.items()}
