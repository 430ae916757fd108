"""``stunlike-tracker load``: a multi-process load generator for any tracker address.

Kinds of load (one per run):

* ``stun``: STUN Binding requests (RFC 8489), ``--window`` outstanding per socket;
* ``handshake``: full DTLS 1.2 handshakes with the cookie exchange, each on a
  fresh socket, closed with close_notify once complete;
* ``ppsp``: established DTLS sessions (CONNECT + JOIN first) sending PPSP
  requests in a ``--mix`` of CONNECT, JOIN, FIND, STAT_REPORT, DISCONNECT,
  one outstanding per session (PROTOCOL §4), against a swarm populated by
  ``--swarm-size`` silent SEEDs;
* ``udp``: datagrams of ``--size`` bytes to an echo server;
* ``bt``: BEP 15 UDP tracker announces (what a BitTorrent tracker answers).

Several worker processes (``--processes``) each drive their share of the
sessions on their own event loop, so the client side is not the limit. The
measurement window starts after a warm-up; responses/s, loss, p50/p99
latency are reported, and, when the tracker runs on this machine
(``--server-pid`` or ``--serve``), its CPU-seconds from /proc over the window.
"""
