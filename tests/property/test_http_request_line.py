"""The status listener's request-line parser takes network input: it never
raises, and reads back what a well-formed request line carries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stunlike_tracker.http.server import request_line_untrusted

_TOKEN = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(st.binary(max_size=300))
def test_never_raises_on_any_bytes(head: bytes) -> None:
    method, target = request_line_untrusted(head)
    assert (method is None and target == "") or isinstance(method, str)


@given(_TOKEN, _TOKEN, st.sampled_from(["0", "1"]), st.binary(max_size=100))
def test_reads_back_a_well_formed_request_line(
    method: str, target: str, minor: str, rest: bytes
) -> None:
    head = f"{method} {target} HTTP/1.{minor}\r\n".encode() + rest
    assert request_line_untrusted(head) == (method, target)


def test_refuses_what_is_not_a_request_line() -> None:
    for head in (b"", b"GET /\r\n\r\n", b"GET / SPDY/3\r\n\r\n", b"G\xffT / HTTP/1.1\r\n\r\n"):
        assert request_line_untrusted(head) == (None, "")
