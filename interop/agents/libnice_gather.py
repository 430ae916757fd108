"""libnice 0.1 (Debian gir1.2-nice-0.1 + python3-gi; run with /usr/bin/python3):
gather candidates with the STUN server HOST PORT; prints one JSON line
{"candidates": [{"type": "srflx", "addr": "ip:port"}, ...]}."""

import ctypes
import ctypes.util
import json
import sys

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402

TYPES = {
    Nice.CandidateType.HOST: "host",
    Nice.CandidateType.SERVER_REFLEXIVE: "srflx",
    Nice.CandidateType.PEER_REFLEXIVE: "prflx",
    Nice.CandidateType.RELAYED: "relay",
}


_KEEP_ALIVE: list[object] = []
RECV_FUNC = ctypes.CFUNCTYPE(
    None,
    ctypes.c_void_p,
    ctypes.c_uint,
    ctypes.c_uint,
    ctypes.c_uint,
    ctypes.c_void_p,
    ctypes.c_void_p,
)


def _gpointer(obj: object) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return int(get(obj.__gpointer__, None))


def attach_recv(agent: object, stream: int, component: int, on_data: object = None) -> None:
    """nice_agent_attach_recv; ``on_data(bytes)`` gets every application datagram."""
    lib = ctypes.CDLL(ctypes.util.find_library("nice") or "libnice.so.10")
    lib.nice_agent_attach_recv.restype = ctypes.c_bool
    lib.nice_agent_attach_recv.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        RECV_FUNC,
        ctypes.c_void_p,
    ]

    def received(_agent: int, _stream: int, _comp: int, size: int, buf: int, _data: int) -> None:
        if callable(on_data):
            on_data(ctypes.string_at(buf, size))

    callback = RECV_FUNC(received)
    ctx = ctypes.CDLL(ctypes.util.find_library("glib-2.0")).g_main_context_default
    ctx.restype = ctypes.c_void_p
    if not lib.nice_agent_attach_recv(_gpointer(agent), stream, component, ctx(), callback, None):
        raise RuntimeError("nice_agent_attach_recv failed")
    _KEEP_ALIVE.append(callback)  # the C side holds it for the agent's life


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    context = GLib.MainContext.default()
    loop = GLib.MainLoop.new(context, False)
    agent = Nice.Agent.new(context, Nice.Compatibility.RFC5245)
    agent.set_property("stun-server", host)
    agent.set_property("stun-server-port", port)
    agent.set_property("upnp", False)
    agent.set_property("ice-tcp", False)
    stream = agent.add_stream(1)
    # Incoming datagrams (the STUN answers among them) are only read once a
    # receive callback is attached; nice_agent_attach_recv is not
    # introspectable, so it is called through ctypes (FIELD-NOTES).
    attach_recv(agent, stream, 1)
    agent.connect("candidate-gathering-done", lambda *_: loop.quit())
    GLib.timeout_add(8000, loop.quit)
    if not agent.gather_candidates(stream):
        print("libnice: gather_candidates failed", file=sys.stderr)
        return 1
    loop.run()
    out = [
        {
            "type": TYPES.get(c.type, str(c.type)),
            "addr": f"{c.addr.dup_string()}:{c.addr.get_port()}",
        }
        for c in agent.get_local_candidates(stream, 1)
    ]
    print(json.dumps({"candidates": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
