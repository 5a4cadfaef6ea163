"""Built-in HTML pages (sign-in, sign-out, error), like next-auth's defaults.

Self-contained: inline styles only, no scripts, no external assets, so the pages can be
served under a strict Content-Security-Policy. Every dynamic value is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape

SIGNIN_ERRORS = {
    "Signin": "Try signing in with a different account.",
    "OAuthSignin": "Try signing in with a different account.",
    "OAuthCallback": "Try signing in with a different account.",
    "OAuthCreateAccount": "Try signing in with a different account.",
    "EmailCreateAccount": "Try signing in with a different account.",
    "Callback": "Try signing in with a different account.",
    "OAuthAccountNotLinked": (
        "To confirm your identity, sign in with the same account you used originally."
    ),
    "EmailSignin": "The e-mail could not be sent.",
    "CredentialsSignin": "Sign in failed. Check the details you provided are correct.",
    "SessionRequired": "Please sign in to access this page.",
    "TooManyRequests": "Too many sign-in attempts. Wait a while, then try again.",
    "ServiceUnavailable": "Sign-in is unavailable for a moment. Try again shortly.",
}
DEFAULT_SIGNIN_ERROR = "Unable to sign in."

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f3f4f6;
color:#111827;display:flex;justify-content:center;align-items:center;min-height:100vh;margin:0}
main{background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px #0002;
width:min(22rem,90vw)}
h1{font-size:1.25rem;margin:0 0 1rem}
label{display:block;font-size:.9rem;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #9ca3af;border-radius:.375rem}
button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:.375rem;
background:#1d4ed8;color:#fff;font-size:1rem;cursor:pointer}
button:focus,input:focus{outline:2px solid #1d4ed8;outline-offset:2px}
.error{background:#fef2f2;color:#991b1b;padding:.75rem;border-radius:.375rem;margin-bottom:1rem}
"""


# The one inline stylesheet is allowed by its hash: no 'unsafe-inline', no scripts at all.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _page(title: str, content: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


def signin_error_message(code: str | None) -> str | None:
    if not code:
        return None
    return SIGNIN_ERRORS.get(code, DEFAULT_SIGNIN_ERROR)


def signin_page(
    *,
    base: str,
    csrf_token: str,
    callback_url: str,
    error: str | None,
    credentials: bool,
    oauth: Sequence[tuple[str, str]] = (),
) -> str:
    message = signin_error_message(error)
    parts = ["<h1>Sign in</h1>"]
    if message:
        parts.append(f'<p class="error" role="alert">{escape(message)}</p>')
    for provider_id, name in oauth:
        parts.append(
            f'<form method="post" action="{escape(base)}/signin/{escape(provider_id)}">'
            f'<input type="hidden" name="csrfToken" value="{escape(csrf_token)}">'
            f'<input type="hidden" name="callbackUrl" value="{escape(callback_url)}">'
            f'<button type="submit">Sign in with {escape(name)}</button></form>'
        )
    if credentials:
        parts.append(
            f'<form method="post" action="{escape(base)}/callback/credentials">'
            f'<input type="hidden" name="csrfToken" value="{escape(csrf_token)}">'
            f'<input type="hidden" name="callbackUrl" value="{escape(callback_url)}">'
            '<label for="email">Email</label>'
            '<input id="email" name="email" type="email" autocomplete="email" required>'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password" required>'
            '<button type="submit">Sign in with email</button></form>'
        )
    return _page("Sign in", "".join(parts))


def signout_page(*, base: str, csrf_token: str) -> str:
    return _page(
        "Sign out",
        "<h1>Sign out</h1><p>Are you sure you want to sign out?</p>"
        f'<form method="post" action="{escape(base)}/signout">'
        f'<input type="hidden" name="csrfToken" value="{escape(csrf_token)}">'
        '<button type="submit">Sign out</button></form>',
    )


def error_page(*, status: int, base: str) -> str:
    headings = {
        403: ("Access denied", "You do not have permission to sign in."),
        429: ("Too many attempts", "Too many sign-in attempts. Wait a while, then try again."),
        500: ("Server error", "There is a problem with the server configuration."),
        503: ("Unavailable", "Sign-in is unavailable for a moment. Try again shortly."),
    }
    heading, text = headings.get(status, ("Error", "Unable to sign in."))
    return _page(
        heading,
        f"<h1>{escape(heading)}</h1><p>{escape(text)}</p>"
        f'<p><a href="{escape(base)}/signin">Sign in</a></p>',
    )
