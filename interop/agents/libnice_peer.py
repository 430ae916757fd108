"""libnice 0.1 against the peer's ICE agent, ICE only (libnice has no DTLS
or SCTP, so it cannot carry our data channel). Run with /usr/bin/python3:

    libnice_peer.py ROLE CONFIG_JSON

ROLE "offer": ICE controlling, prints {"ice": LOCAL}, reads {"ice": REMOTE};
ROLE "answer": controlled, reads {"ice": REMOTE}, prints {"ice": LOCAL}.
LOCAL/REMOTE: {"ufrag", "pwd", "candidates": [SDP "candidate:..." lines]}.
CONFIG_JSON: {"stun": "host:port", "turn": {"uri", "username", "credential"} | null}.
Once a pair is selected it sends "hello from libnice" on it and echoes
every datagram as "echo:<datagram>", printing {"outcome": "ok", "received"}.
"""

import json
import re
import sys
import threading

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402
from libnice_gather import attach_recv  # noqa: E402


def _emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    role, config = sys.argv[1], json.loads(sys.argv[2])
    context = GLib.MainContext.default()
    loop = GLib.MainLoop.new(context, False)
    agent = Nice.Agent.new(context, Nice.Compatibility.RFC5245)
    host, port = config["stun"].rsplit(":", 1)
    agent.set_property("stun-server", host)
    agent.set_property("stun-server-port", int(port))
    agent.set_property("upnp", False)
    agent.set_property("ice-tcp", False)
    agent.set_property("controlling-mode", role == "offer")
    stream = agent.add_stream(1)
    if config.get("turn"):
        turn = config["turn"]
        m = re.fullmatch(r"turn:([^:?]+):(\d+)(\?.*)?", turn["uri"])
        if m is None:
            _emit({"outcome": "failed", "detail": f"libnice: TURN URI {turn['uri']!r}"})
            return 1
        agent.set_relay_info(
            stream, 1, m[1], int(m[2]), turn["username"], turn["credential"],
            Nice.RelayType.UDP,
        )  # fmt: skip
    received: list[str] = []

    def on_data(data: bytes) -> None:
        text = data.decode(errors="replace")
        received.append(text)
        reply = f"echo:{text}"
        agent.send(stream, 1, len(reply), reply)
        _emit({"outcome": "ok", "received": received})

    attach_recv(agent, stream, 1, on_data)

    def on_state(_agent: object, _stream: int, _comp: int, state: int) -> None:
        if state == Nice.ComponentState.READY:
            hello = "hello from libnice"
            agent.send(stream, 1, len(hello), hello)
        elif state == Nice.ComponentState.FAILED:
            _emit({"outcome": "failed", "detail": "libnice: ICE failed"})
            loop.quit()

    agent.connect("component-state-changed", on_state)

    def local() -> dict[str, object]:
        _, ufrag, pwd = agent.get_local_credentials(stream)
        lines = [
            agent.generate_local_candidate_sdp(c).removeprefix("a=")
            for c in agent.get_local_candidates(stream, 1)
        ]
        return {"ufrag": ufrag, "pwd": pwd, "candidates": lines}

    def apply_remote(remote: dict[str, object]) -> bool:
        agent.set_remote_credentials(stream, remote["ufrag"], remote["pwd"])
        cands = [agent.parse_remote_candidate_sdp(stream, "a=" + c) for c in remote["candidates"]]
        agent.set_remote_candidates(stream, 1, [c for c in cands if c is not None])
        return False  # a one-shot idle callback

    def read_remote() -> None:
        line = sys.stdin.readline()
        if line:
            GLib.idle_add(apply_remote, json.loads(line)["ice"])

    def gathered(*_: object) -> None:
        _emit({"ice": local()})
        if role == "offer":
            threading.Thread(target=read_remote, daemon=True).start()

    agent.connect("candidate-gathering-done", gathered)
    if role == "answer":
        # The remote's credentials and candidates may arrive before ours are
        # gathered; libnice keeps them until gathering ends.
        threading.Thread(target=read_remote, daemon=True).start()
    agent.gather_candidates(stream)
    GLib.timeout_add_seconds(60, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
