"""Masking passwords in URLs that may not even parse.

A URL an operator mistyped (``postgresql+psycopg//user:pw@host/db``, a missing ``:``) is
exactly the one an error message wants to show, and exactly the one a parser cannot split
into user and password. :func:`mask_url` therefore works on the text: whatever sits between
the scheme and the last ``@`` is user-info, a ``:`` in the authority that is not followed by
a port number hides a password, and secret-named query values are masked. It errs towards
hiding too much.
"""

from __future__ import annotations

import re

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
