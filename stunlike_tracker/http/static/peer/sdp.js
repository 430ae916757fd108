// One ICE offer <-> one WebRTC data-channel SDP (PROTOCOL §6), the page's twin
// of stunlike_tracker/ice/sdp.py: the same constants, so that the native peer
// and the page describe one data channel the same way.
//
// An offer here is {id, ufrag, pwd, fingerprint: "sha-256 AA:..", candidates:
// [{ip, port, type: "HOST"|"REFLEXIVE"|"RELAYED", priority, foundation}]}.

const ICE_TYPE = { HOST: "host", REFLEXIVE: "srflx", RELAYED: "relay" };
const OFFER_TYPE = { host: "HOST", srflx: "REFLEXIVE", prflx: "REFLEXIVE", relay: "RELAYED" };
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const FOUNDATION = /^[A-Za-z0-9+/]{1,32}$/;
const UFRAG = /^[A-Za-z0-9+/]{4,256}$/;
const PWD = /^[A-Za-z0-9+/]{22,256}$/;
const FINGERPRINT = /^(sha-256|sha-384|sha-512) ([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+)$/i;

// A browser's mDNS host name (PROTOCOL §14.5): a UUID followed by ".local".
const MDNS = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local$/i;

export function isMdns(text) {
  return MDNS.test(text);
}

export function isIp(text) {
  const v4 = IPV4.exec(text);
  if (v4) return v4.slice(1).every((part) => Number(part) <= 255);
  return text.includes(":") && IPV6.test(text);
}

// The SDP that stands for a remote offer: role "offer" for an offer we answer
// (a=setup:actpass, the offerer is the DTLS server and ICE controlling),
// "answer" for the answer to our own offer (a=setup:active, DTLS client).
export function sdpFromOffer(offer, role) {
  if (!UFRAG.test(offer.ufrag || "") || !PWD.test(offer.pwd || "")) {
    throw new Error("offer has no usable ICE credentials");
  }
  const fp = FINGERPRINT.exec(offer.fingerprint || "");
  if (!fp) throw new Error("offer has no usable DTLS fingerprint");
  const usable = (offer.candidates || []).filter(
    (c) =>
      ICE_TYPE[c.type] &&
      (isIp(c.ip) || (c.type === "HOST" && isMdns(c.ip))) &&
      c.port >= 1 &&
      c.port <= 65535,
  );
  const lines = usable.map((c, index) => {
    const v6 = c.ip.includes(":");
    const foundation = FOUNDATION.test(c.foundation || "") ? c.foundation : String(index + 1);
    let line = `a=candidate:${foundation} 1 udp ${c.priority || 1} ${c.ip} ${c.port} typ ${ICE_TYPE[c.type]}`;
    // RFC 8839 placeholder related address: the offer does not reveal bases.
    if (c.type !== "HOST") line += v6 ? " raddr :: rport 9" : " raddr 0.0.0.0 rport 9";
    return line;
  });
  const addressed = usable.filter((c) => isIp(c.ip));
  const fallback = addressed.length
    ? addressed.reduce((a, b) => ((a.priority || 0) <= (b.priority || 0) ? a : b))
    : null;
  const port = fallback ? fallback.port : 9;
  const conn = fallback ? `IN IP${fallback.ip.includes(":") ? 6 : 4} ${fallback.ip}` : "IN IP4 0.0.0.0";
  return [
    "v=0",
    "o=- 1 1 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic:WMS *",
    `m=application ${port} UDP/DTLS/SCTP webrtc-datachannel`,
    `c=${conn}`,
    "a=mid:0",
    "a=sctp-port:5000",
    "a=max-message-size:65536",
    ...lines,
    "a=end-of-candidates",
    `a=ice-ufrag:${offer.ufrag}`,
    `a=ice-pwd:${offer.pwd}`,
    `a=fingerprint:${fp[1].toLowerCase()} ${fp[2].toUpperCase()}`,
    role === "offer" ? "a=setup:actpass" : "a=setup:active",
    "",
  ].join("\r\n");
}

// Our local description as an offer: UDP candidates of component 1. A
// browser's mDNS ".local" host candidates are kept (other browsers on the
// link can resolve them); a native peer skips them and uses the offer's
// srflx/relay candidates, gathered via the tracker's STUN/TURN (PROTOCOL §14.5).
export function offerFromSdp(sdp, id) {
  const value = (name) => {
    const found = new RegExp(`^a=${name}:(.+?)\\r?$`, "m").exec(sdp);
    return found ? found[1].trim() : null;
  };
  const fingerprints = [...sdp.matchAll(/^a=fingerprint:(\S+) (\S+?)\r?$/gm)];
  const best = fingerprints.find((f) => f[1].toLowerCase() === "sha-256") || fingerprints[0];
  const candidates = [];
  const seen = new Set();
  for (const line of sdp.matchAll(/^a=candidate:(.+?)\r?$/gm)) {
    const f = line[1].split(" ");
    if (f.length < 8 || f[1] !== "1" || f[2].toLowerCase() !== "udp" || f[6] !== "typ") continue;
    const type = OFFER_TYPE[f[7]];
    const port = Number(f[5]);
    const usable = isIp(f[4]) || (type === "HOST" && isMdns(f[4]));
    if (!type || !usable || !(port >= 1 && port <= 65535) || seen.has(`${f[4]} ${port}`)) continue;
    seen.add(`${f[4]} ${port}`);
    candidates.push({ ip: f[4], port, type, priority: Number(f[3]), foundation: f[0] });
  }
  return {
    id,
    ufrag: value("ice-ufrag"),
    pwd: value("ice-pwd"),
    fingerprint: best ? `${best[1].toLowerCase()} ${best[2].toUpperCase()}` : null,
    candidates,
  };
}
