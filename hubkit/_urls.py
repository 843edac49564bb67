"""Masking secrets in URLs (that may not even parse) and in any text that shows one.

The one home of hubkit's masking, at the foundation so every layer can show a URL or an
error text safely: :func:`mask_url` and :func:`redact_url` for URLs, :func:`redact` /
:func:`redact_mapping` / :func:`redact_headers` for texts and JSON (the hub client's logs,
exception texts and reprs; :mod:`hubkit.hub.redact` is their public door).

A URL an operator mistyped (``postgresql+psycopg//user:pw@host/db``, a missing ``:``) is
exactly the one an error message wants to show, and exactly the one a parser cannot split
into user and password. :func:`mask_url` therefore works on the text: whatever sits between
the scheme and the last ``@`` is user-info, a ``:`` in the authority that is not followed by
a port number hides a password, and secret-named query values are masked. It errs towards
hiding too much.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:?/*")
_SECRET_QUERY = re.compile(
    r"(?i)((?:^|[?&;])[^=&;?#]*(?:password|passwd|pwd|secret|token|key)[^=&;?#]*=)[^&;#]*"
)


def mask_url(url: str | None) -> str | None:
    """``url`` with any password (or token user-info) replaced by ``***``.

    >>> mask_url("postgresql+psycopg://app:s3cret@db:5432/hubkit")
    'postgresql+psycopg://app:***@db:5432/hubkit'
    >>> mask_url("postgresql+psycopg//app:s3cret@db/hubkit")
    'postgresql+psycopg//app:***@db/hubkit'
    >>> mask_url("https://hub.example.com:8443/api?token=abc")
    'https://hub.example.com:8443/api?token=***'
    """
    if not url:
        return url
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, url)
    prefix = _PREFIX.match(text)
    start = prefix.end() if prefix else 0
    head, rest = text[:start], text[start:]
    if "@" in rest:
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        shown = f"{user}:{MASK}" if user else MASK
        return f"{head}{shown}@{host}"
    # No user-info separator: "user:password/host" (a typo for '@') still hides the part
    # after a ':' unless it is a port number.
    authority, sep, path = rest.partition("/")
    if ":" in authority:
        name, _, after = authority.partition(":")
        if not after.isdigit():
            return f"{head}{name}:{MASK}{sep}{path}"
    return text


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
