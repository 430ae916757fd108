// werift 0.24 (pinned in ../package-lock.json): gather candidates with the
// STUN server HOST PORT through an RTCPeerConnection; prints one JSON line
// {"candidates": ["candidate:... typ srflx ...", ...]}.
"use strict";
const { RTCPeerConnection } = require("werift");

async function main() {
  const [host, port] = process.argv.slice(2);
  const pc = new RTCPeerConnection({ iceServers: [{ urls: `stun:${host}:${port}` }] });
  pc.createDataChannel("gather");
  const candidates = [];
  const done = new Promise((resolve) => {
    pc.onIceCandidate.subscribe((c) => {
      if (c && c.candidate) candidates.push(c.candidate);
    });
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === "complete") resolve();
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  await Promise.race([done, new Promise((r) => setTimeout(r, 8000))]);
  console.log(JSON.stringify({ candidates }));
  await pc.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(`werift: ${err}`);
  process.exit(1);
});
