"""Coverage-guided fuzzing of the tracker port's datagram path before any
session exists: the RFC 7983 demux, the per-source budgets, the STUN
responder and the stateless DTLS ClientHello/cookie check (PROTOCOL §1, §8).

Properties: nothing raises; nothing answers an unverified address with
more bytes than it sent, except STUN (at most twice, PROTOCOL §5); no
per-address state is created for a source without an association.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from stunlike_tracker.certs import make_ca, make_server_cert
    from stunlike_tracker.server.budgets import Budgets
    from stunlike_tracker.stun.responder import BindingResponder
    from stunlike_tracker.transport.cookies import CookieKeys
    from stunlike_tracker.transport.demux import Route, classify
    from stunlike_tracker.transport.dtls import DtlsServerContext, HelloAction

from fuzz.common import run

_CA = make_ca()
_CERT = make_server_cert(_CA)
DTLS = DtlsServerContext(_CERT.cert_pem, _CERT.key_pem, cookie_keys=CookieKeys.generate())
STUN = BindingResponder()
BUDGETS = Budgets()
SOURCE = ("198.51.100.7", 40000)


def test_one_input(data: bytes) -> None:
    route = classify(data)
    if route is Route.STUN:
        reply = STUN.handle_untrusted(data, SOURCE)
        assert reply is None or len(reply) <= 2 * len(data)
    elif route is Route.DTLS:
        assert BUDGETS.admit_datagram(SOURCE, 0.0) is None
        hello = DTLS.check_client_hello_untrusted(data, SOURCE, 0.0)
        if hello.action is HelloAction.VERIFY_REQUEST:
            assert len(hello.verify_request) <= len(data)
    assert BUDGETS.sources == 0


if __name__ == "__main__":
    run(test_one_input)
