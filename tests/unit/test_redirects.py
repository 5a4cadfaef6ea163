"""The callbackUrl rule (R27), with oauth2-proxy's corpus of 559 hostile targets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsvc import redirects
from authsvc.app import create_app
from authsvc.redirects import default_redirect
from tests.conftest import BASE, DATA, make_settings

HOST = "localhost:3000"


def corpus() -> list[str]:
    lines = (DATA / "openredirects.txt").read_text().splitlines()
    targets = set()
    for line in lines:
        if not line.strip():
            continue
        line = line.replace("www.whitelisteddomain.tld", HOST)
        line = line.replace("whitelisteddomain.tld", HOST)
        targets.update({line, unquote(line)})
    return sorted(targets)


CORPUS = corpus()


def stays_home(location: str) -> bool:
    """The browser would stay on the configured origin."""
    parts = urlsplit(location)
    rest = location[len(BASE) :]
    return (
        location.startswith(BASE)
        and rest[:1] in ("", "/", "?", "#")
        and parts.scheme == "http"
        and parts.netloc == HOST
        and not any(ch in location for ch in "\\\t\r\n")
    )


def test_corpus_has_every_line_raw_and_decoded() -> None:
    assert len(CORPUS) > 559


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard", f"{BASE}/dashboard"),
        (f"{BASE}/dashboard?x=1#y", f"{BASE}/dashboard?x=1#y"),
        (BASE, BASE),
        ("https://evil.example/steal", BASE),
        ("//evil.example/x", f"{BASE}//evil.example/x"),
        ("http://localhost:3001/", BASE),
        ("https://localhost:3000/", BASE),
        ("http://sub.localhost:3000/", BASE),
        ("http://localhost:3000@evil.example/", BASE),
        ("http://evil@localhost:3000/", BASE),
        ("http://localhost:3000.evil.example/", BASE),
        ("javascript:alert(1)", BASE),
        ("/\\evil.example", BASE),
        ("/\t/evil.example", BASE),
        ("foo", BASE),
        ("", BASE),
        ("/ünïcode path", f"{BASE}/%C3%BCn%C3%AFcode%20path"),
    ],
)
def test_redirect_rule(target: str, expected: str) -> None:
    assert default_redirect(target, BASE) == expected


@pytest.mark.parametrize("target", CORPUS)
def test_hostile_target_never_leaves_the_configured_origin(target: str) -> None:
    assert stays_home(default_redirect(target, BASE))


@given(st.text(max_size=200))
def test_any_text_gives_a_same_origin_latin1_location(target: str) -> None:
    location = default_redirect(target, BASE)
    assert stays_home(location)
    location.encode("latin-1")


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def test_every_corpus_target_as_a_query_callback_url_stays_home(
    client: httpx.AsyncClient,
) -> None:
    for target in CORPUS:
        client.cookies.clear()
        response = await client.get("/api/auth/csrf", params={"callbackUrl": target})
        assert response.status_code == 200, target
        stored = response.cookies.get("next-auth.callback-url")
        assert stored is not None and stays_home(unquote(stored)), target


async def test_every_corpus_target_posted_to_signout_redirects_home(
    client: httpx.AsyncClient,
) -> None:
    client.cookies.clear()
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    for target in CORPUS:
        response = await client.post(
            "/api/auth/signout", data={"csrfToken": csrf, "callbackUrl": target}
        )
        assert response.status_code == 302, target
        assert stays_home(response.headers["location"]), target


async def test_hostile_callback_url_cookie_is_replaced(client: httpx.AsyncClient) -> None:
    client.cookies.clear()
    response = await client.get(
        "/api/auth/session",
        headers={"cookie": "next-auth.callback-url=https%3A%2F%2Fevil.example"},
    )
    assert response.status_code == 200
    assert unquote(response.cookies["next-auth.callback-url"]) == BASE


def test_a_target_seen_before_is_judged_against_each_base_url() -> None:
    assert default_redirect("https://shop.example/account", "https://shop.example") == (
        "https://shop.example/account"
    )
    assert default_redirect("https://shop.example/account", "https://other.example") == (
        "https://other.example"
    )


def test_a_target_over_the_length_cap_is_not_kept_in_memory() -> None:
    judged = redirects._judged.cache_info().currsize
    for index in range(20):
        assert default_redirect(f"/{index}{'a' * 30_000}", BASE) == BASE
    assert redirects._judged.cache_info().currsize == judged
