"""The tracker's HTTP listener: /metrics, the status page, /status.json.

Off unless ``[http] listen`` (or ``serve --http``) is set. Everything here
reads the node's plain counters and the store at request time; nothing on
the UDP path knows this module exists.
"""

from stunlike_tracker.http.server import HttpListener, start_http

__all__ = ["HttpListener", "start_http"]
