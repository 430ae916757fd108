// werift 0.24 (pinned in ../package-lock.json) as the other end of our P2P
// channel: one RTCPeerConnection with the negotiated data channel our peer
// uses (id 0, label "stunlike-p2p", ordered).
//
//   node werift_peer.cjs ROLE CONFIG_JSON
//
// ROLE "offer": prints {"sdp": OFFER}, reads {"sdp": ANSWER} on stdin;
// ROLE "answer": reads {"sdp": OFFER}, prints {"sdp": ANSWER}.
// CONFIG_JSON: {"stun": "host:port", "turn": {"uri", "username", "credential"} | null}.
// Candidates are gathered completely before the SDP is printed (no trickle).
// On the channel it speaks our framing (one type byte: 1 = a whole message):
// it sends "hello from werift", echoes every message as "echo:<message>",
// and prints {"outcome": "ok", "received": [...]} once it has echoed one.
"use strict";
const readline = require("readline");
const { RTCPeerConnection, RTCSessionDescription } = require("werift");

const DATA_END = 1;

function frame(text) {
  return Buffer.concat([Buffer.from([DATA_END]), Buffer.from(text)]);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function main() {
  const [role, configJson] = process.argv.slice(2);
  const config = JSON.parse(configJson);
  const iceServers = [{ urls: `stun:${config.stun}` }];
  if (config.turn) {
    iceServers.push({
      urls: config.turn.uri,
      username: config.turn.username,
      credential: config.turn.credential,
    });
  }
  const pc = new RTCPeerConnection({ iceServers, iceUseIpv4: true, iceUseIpv6: false });
  const dc = pc.createDataChannel("stunlike-p2p", { negotiated: true, id: 0, ordered: true });
  const received = [];
  dc.stateChanged.subscribe((state) => {
    if (state === "open") dc.send(frame("hello from werift"));
  });
  dc.onMessage.subscribe((data) => {
    const buf = Buffer.from(data);
    if (buf.length === 0 || buf[0] !== DATA_END) return;
    const text = buf.subarray(1).toString();
    received.push(text);
    dc.send(frame(`echo:${text}`));
    emit({ outcome: "ok", received });
  });

  const lines = readline.createInterface({ input: process.stdin });
  const iter = lines[Symbol.asyncIterator]();
  const readSdp = async () => JSON.parse((await iter.next()).value).sdp;
  const gathered = () =>
    new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.iceGatheringStateChange.subscribe((s) => s === "complete" && resolve());
    });

  if (role === "offer") {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    emit({ sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription(new RTCSessionDescription(await readSdp(), "answer"));
  } else {
    await pc.setRemoteDescription(new RTCSessionDescription(await readSdp(), "offer"));
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered();
    emit({ sdp: pc.localDescription.sdp });
  }
}

main().catch((err) => {
  emit({ outcome: "failed", detail: `werift: ${err}` });
  process.exit(1);
});
