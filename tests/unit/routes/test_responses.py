"""The shared response shapes: a JSON answer's head is the one Starlette's `Response` gives."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from authsvc.routes.responses import JSON, JSON_UTF8, NO_STORE, JsonAnswer

BODY = b'{"csrfToken":"abc"}'


@pytest.mark.parametrize("status", [200, 302, 400, 204, 304, 500])
@pytest.mark.parametrize("media_type", [JSON, JSON_UTF8, "text/plain"])
@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        NO_STORE,
        {"Location": "https://shop.example/a?b=c"},
        {"Content-Type": "application/problem+json"},
        {"content-length": "19"},
    ],
)
def test_a_json_answer_has_starlettes_status_headers_and_body(
    status: int, media_type: str, headers: dict[str, str] | None
) -> None:
    ours = JsonAnswer(BODY, status, media_type, headers)
    starlettes = Response(BODY, status_code=status, media_type=media_type, headers=headers)
    assert (ours.status_code, ours.raw_headers, ours.body) == (
        starlettes.status_code,
        starlettes.raw_headers,
        starlettes.body,
    )
