"""DTLS-secured UDP transport, sans-I/O.

* :mod:`.demux`   -- RFC 7983 first-byte classification of the shared port;
* :mod:`.cookies` -- stateless, time-bucketed, rotatable HMAC cookies;
* :mod:`.hello`   -- hand-parsed ClientHello, hand-built HelloVerifyRequest;
* :mod:`.records` -- DTLS record framing (split glued records, pack datagrams);
* :mod:`.dtls_context` -- server/client configuration, the stateless hello check;
* :mod:`.dtls`    -- server and client sessions (feed / datagrams_to_send /
  receive / send / timers), the public import path for all DTLS names;
* :mod:`.pair`    -- an in-memory client <-> server pair for tests and benches.

Nothing here reads a clock or touches a socket; the caller passes ``now``.
"""
