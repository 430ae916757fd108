// The peer-to-peer channel (PROTOCOL §6): one RTCPeerConnection with one
// pre-negotiated data channel, framed and flow-controlled exactly as the
// native peer's stunlike_tracker/peer/channel.py:
//
//   0x00 DATA_MORE payload   a piece of a message, more follows
//   0x01 DATA_END  payload   the last piece
//   0x02 CREDIT    uint32 BE the receiver consumed this many bytes
//   0x03 CLOSE               the sender is done; answer with CLOSE_ACK
//   0x04 CLOSE_ACK           every frame before the CLOSE arrived
//
// Every data-channel message is at most 16 KiB, header included. A sender may
// have at most RECV_WINDOW bytes (whole frames) not yet consumed by the other
// side; the receiver returns credit as it consumes.

import { offerFromSdp, sdpFromOffer } from "./sdp.js";

export const LABEL = "stunlike-p2p";
const MAX_FRAME = 16 * 1024;
const RECV_WINDOW = 4 * 1024 * 1024;
const GRANT_AT = RECV_WINDOW / 4;
const SEND_HIGH_WATER = 1024 * 1024;
const SEND_LOW_WATER = 256 * 1024;
const [DATA_MORE, DATA_END, CREDIT, CLOSE, CLOSE_ACK] = [0, 1, 2, 3, 4];
const GATHER_TIMEOUT_MS = 10000;
const CONNECT_TIMEOUT_MS = 15000;

// A peer connection with the data channel both sides pre-negotiate (id 0),
// as the native peer does.
export class Link {
  constructor(rtcConfig) {
    this.pc = new RTCPeerConnection(rtcConfig);
    this.dc = this.pc.createDataChannel(LABEL, { negotiated: true, id: 0, ordered: true });
    this.dc.binaryType = "arraybuffer";
    this.dc.bufferedAmountLowThreshold = SEND_LOW_WATER;
    this.channel = new Channel(this);
  }

  // Gather every candidate (no trickle: an offer is complete, PROTOCOL §6).
  async gathered(id) {
    await bounded(
      new Promise((resolve) => {
        if (this.pc.iceGatheringState === "complete") return resolve();
        this.pc.addEventListener("icegatheringstatechange", () => {
          if (this.pc.iceGatheringState === "complete") resolve();
        });
      }),
      GATHER_TIMEOUT_MS,
      "ICE gathering",
    ).catch(() => {}); // use what was gathered so far
    return offerFromSdp(this.pc.localDescription.sdp, id);
  }

  // We offer: ICE controlling, DTLS server (a=setup:actpass).
  async createOffer(id) {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.gathered(id);
  }

  async acceptAnswer(answer) {
    await this.pc.setRemoteDescription({ type: "answer", sdp: sdpFromOffer(answer, "answer") });
    return this.channel.opened();
  }

  // We answer: ICE controlled, DTLS client (a=setup:active).
  async answer(remote, id) {
    await this.pc.setRemoteDescription({ type: "offer", sdp: sdpFromOffer(remote, "offer") });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    return this.gathered(id);
  }

  close() {
    this.channel.fail(new Error("closed"));
    this.pc.close();
  }
}

function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class Channel {
  constructor(link) {
    this.link = link;
    const dc = link.dc;
    this.dc = dc;
    this.credit = RECV_WINDOW;
    this.ungranted = 0;
    this.partial = [];
    this.messages = [];
    this.waiters = []; // recv() calls waiting for a message
    this.wake = null; // a send waiting for credit or buffer room
    this.closeAcked = null;
    this.ended = null;
    this.openPromise = new Promise((resolve, reject) => {
      dc.addEventListener("open", () => resolve(this));
      this.rejectOpen = reject;
    });
    this.openPromise.catch(() => {});
    dc.addEventListener("message", (event) => this.onFrame(new Uint8Array(event.data)));
    dc.addEventListener("bufferedamountlow", () => this.wakeSender());
    dc.addEventListener("close", () => this.fail(new Error("data channel closed")));
    link.pc.addEventListener("connectionstatechange", () => {
      if (link.pc.connectionState === "failed") this.fail(new Error("ICE or DTLS failed"));
    });
  }

  opened(ms = CONNECT_TIMEOUT_MS) {
    return bounded(this.openPromise, ms, "opening the channel");
  }

  onFrame(frame) {
    if (this.ended || frame.length === 0) return;
    const kind = frame[0];
    if (kind === DATA_MORE || kind === DATA_END) {
      this.partial.push(frame.subarray(1));
      this.grant(frame.length); // consumed at once: the page keeps messages itself
      if (kind === DATA_END) {
        const message = concat(this.partial);
        this.partial = [];
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(message);
        else this.messages.push(message);
      }
    } else if (kind === CREDIT && frame.length === 5) {
      this.credit += new DataView(frame.buffer, frame.byteOffset).getUint32(1);
      this.wakeSender();
    } else if (kind === CLOSE) {
      if (this.dc.readyState === "open") this.dc.send(new Uint8Array([CLOSE_ACK]));
    } else if (kind === CLOSE_ACK) {
      if (this.closeAcked) this.closeAcked();
    } else {
      this.fail(new Error(`protocol violation: frame type ${kind}`));
      this.link.pc.close();
    }
  }

  grant(cost) {
    this.ungranted += cost;
    if (this.ungranted >= GRANT_AT && this.dc.readyState === "open") {
      const frame = new Uint8Array(5);
      frame[0] = CREDIT;
      new DataView(frame.buffer).setUint32(1, this.ungranted);
      this.dc.send(frame);
      this.ungranted = 0;
    }
  }

  fail(error) {
    if (this.ended) return;
    this.ended = error;
    this.rejectOpen(error);
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.wakeSender();
  }

  wakeSender() {
    const wake = this.wake;
    this.wake = null;
    if (wake) wake();
  }

  // Send one message of any size as ≤ 16 KiB frames, within the credit window.
  async send(data) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
    let offset = 0;
    do {
      const piece = bytes.subarray(offset, offset + MAX_FRAME - 1);
      offset += piece.length;
      const frame = new Uint8Array(piece.length + 1);
      frame[0] = offset >= bytes.length ? DATA_END : DATA_MORE;
      frame.set(piece, 1);
      while (!this.ended && (this.credit < frame.length || this.dc.bufferedAmount > SEND_HIGH_WATER)) {
        await new Promise((resolve) => (this.wake = resolve));
      }
      if (this.ended) throw this.ended;
      this.dc.send(frame);
      this.credit -= frame.length;
    } while (offset < bytes.length);
  }

  // The next whole message (a Uint8Array), or a rejection once the channel ends.
  recv(ms = 30000) {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    if (this.ended) return Promise.reject(this.ended);
    const waiter = {};
    const promise = new Promise((resolve, reject) => Object.assign(waiter, { resolve, reject }));
    this.waiters.push(waiter);
    return bounded(promise, ms, "waiting for a message");
  }

  // CLOSE, then wait (bounded) for CLOSE_ACK: everything sent before arrived.
  async close(lingerMs = 2000) {
    if (!this.ended && this.dc.readyState === "open" && lingerMs > 0) {
      const acked = new Promise((resolve) => (this.closeAcked = resolve));
      this.dc.send(new Uint8Array([CLOSE]));
      await bounded(acked, lingerMs, "CLOSE_ACK").catch(() => {});
    }
    this.link.close();
  }

  // "host/srflx" etc. of the selected candidate pair (for logs and tests).
  async pairTypes() {
    const stats = await this.link.pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
        const local = stats.get(report.localCandidateId);
        const remote = stats.get(report.remoteCandidateId);
        return `${local?.candidateType}/${remote?.candidateType}`;
      }
    }
    return null;
  }
}

function concat(parts) {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
