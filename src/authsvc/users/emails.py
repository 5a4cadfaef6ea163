"""Email normalisation: one canonical form per address, or None.

NFKC first, then validation (GHSA-7rqj-j65f-68wh: a fullwidth at sign (U+FF20) must not become a
second `@` after the checks). Quoted local parts, comments, lists and whitespace are
refused outright (GHSA-5jpx-9hw9-2fx4, GHSA-xv97-c62v-4587).

The domain is mapped and checked as browsers and mail software do (UTS #46 processing,
non-transitional, then IDNA 2008): `straße.de` is `xn--strae-oqa.de`, its own domain, not
`strasse.de` as Python's built-in IDNA 2003 codec would have it; symbols and emoji that
IDNA 2008 disallows are refused.
"""

from __future__ import annotations

import re
import unicodedata

import idna

MAX_LENGTH = 320
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f\"(),:;<>\[\]\\]")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_email(raw: object) -> str | None:
    if not isinstance(raw, str) or len(raw) > MAX_LENGTH * 4:
        return None
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a JSON "\ud800" escape
        return None
    if not value or len(value) > MAX_LENGTH or _FORBIDDEN.search(value):
        return None
    if value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not local or len(local) > 64 or local.startswith(".") or local.endswith("."):
        return None
    if ".." in local:
        return None
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None:
        return None
    return f"{local}@{ascii_domain}"


def _ascii_domain(domain: str) -> str | None:
    try:
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253:
        return None
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_domain
