// The page as a swarm peer, the twin of stunlike_tracker/peer/peer.py
// (PROTOCOL §6): a small pool of published offers (one in JOIN, the rest in
// STAT_REPORTs; each an RTCPeerConnection whose ufrag, pwd, fingerprint and
// candidates are the offer), answers to offers found in JOIN/FIND peer lists
// sent back by ATTACH, and ATTACH indications pushed over the WebSocket.
//
// Roles as PROTOCOL §6 says: the peer whose offer is answered is ICE
// controlling and DTLS server (a=setup:actpass); the answerer is the DTLS
// client (a=setup:active).

import { Link } from "./channel.js";
import { offerFromJson, offerToJson, randomId } from "./tracker.js";

const POOL_SIZE = 2;
// The tracker drops unused offers after 120 s: replace ours after 90 s, but
// keep each answerable for the offer lifetime plus the grant (120 + 120 s).
const OFFER_REFRESH_AFTER_MS = 90000;
const OFFER_KEEP_FOR_MS = 240000;

export class Peer {
  constructor(tracker, { relayOnly = false, stunUrl = null, log }) {
    this.tracker = tracker;
    this.relayOnly = relayOnly;
    this.stunUrl = stunUrl;
    this.log = log;
    this.swarm = null;
    this.mode = null;
    this.known = new Map(); // peer id -> {peer_id, peer_mode, offer}
    this.published = new Map(); // offer id -> {link, created, retired}
    this.awaitingAnswer = new Map(); // our reverse-path offer id -> resolve(answer)
    this.onChannel = () => {};
    this.refreshTimer = setInterval(() => this.refreshOffers(), OFFER_REFRESH_AFTER_MS / 9);
    tracker.addEventListener("attach", (event) => this.onAttach(event.detail));
    tracker.addEventListener("reconnected", () => this.onReconnected());
  }

  // The tracker is our STUN server (PROTOCOL §5); TURN credentials come in
  // the CONNECT answer (PROTOCOL §7).
  rtcConfig() {
    const iceServers = [];
    if (this.stunUrl && !this.relayOnly) iceServers.push({ urls: this.stunUrl });
    for (const turn of this.tracker.turnServers) {
      iceServers.push({ urls: turn.uri, username: turn.username, credential: turn.credential });
    }
    return { iceServers, iceTransportPolicy: this.relayOnly ? "relay" : "all" };
  }

  offerId() {
    return `${this.tracker.peerId.slice(0, 40)}-${randomId(6)}`;
  }

  async newOffer() {
    const link = new Link(this.rtcConfig());
    const offer = await link.createOffer(this.offerId());
    if (this.relayOnly) offer.candidates = offer.candidates.filter((c) => c.type === "RELAYED");
    if (!offer.candidates.length) {
      link.close();
      throw new Error("no usable ICE candidates (is the tracker's STUN/TURN reachable?)");
    }
    const entry = { link, offer, created: Date.now(), retired: false };
    this.published.set(offer.id, entry);
    this.watch(link, offer.id);
    return entry;
  }

  watch(link, offerId) {
    link.channel.openPromise.then(
      () => {},
      () => this.published.delete(offerId),
    );
  }

  remember(answer) {
    for (const info of (answer.response_data || {}).peer_group || []) {
      if (!info.peer_id) continue;
      const previous = this.known.get(info.peer_id);
      const offer = offerFromJson(info.ice_offer) || (previous ? previous.offer : null);
      this.known.set(info.peer_id, { peerId: info.peer_id, mode: info.peer_mode, offer });
    }
  }

  seeders() {
    return [...this.known.values()].filter((p) => p.mode === "SEED").map((p) => p.peerId);
  }

  async join(swarm, mode) {
    const first = await this.newOffer();
    const answer = await this.tracker.request("JOIN", {
      swarm_id: swarm,
      peer_mode: mode,
      ice_offer: offerToJson(first.offer),
    });
    this.swarm = swarm;
    this.mode = mode;
    this.remember(answer);
    await this.topUp();
    return answer;
  }

  async find() {
    const answer = await this.tracker.request("FIND", { swarm_id: this.swarm });
    this.remember(answer);
    return answer;
  }

  pool() {
    return [...this.published.values()].filter((p) => !p.retired).length;
  }

  async topUp() {
    if (this.toppingUp || !this.swarm) return;
    this.toppingUp = true;
    try {
      while (this.pool() < POOL_SIZE) {
        const entry = await this.newOffer();
        await this.tracker.request("STAT_REPORT", { ice_offer: offerToJson(entry.offer) });
        entry.created = Date.now();
      }
    } catch (error) {
      this.log(`publishing an offer failed: ${error.message}`);
    } finally {
      this.toppingUp = false;
    }
  }

  refreshOffers() {
    const now = Date.now();
    for (const [id, entry] of this.published) {
      if (now - entry.created > OFFER_KEEP_FOR_MS) {
        entry.link.close();
        this.published.delete(id);
      } else if (now - entry.created > OFFER_REFRESH_AFTER_MS) {
        entry.retired = true;
      }
    }
    this.topUp();
  }

  // PROTOCOL §3: after a re-CONNECT the tracker dropped our unused offers.
  onReconnected() {
    for (const entry of this.published.values()) entry.retired = true;
    this.topUp();
  }

  // Open a channel to a peer of our swarm (PROTOCOL §6): answer its offer if
  // we hold one, else offer ourselves by the reverse path.
  async connect(peerId) {
    let info = this.known.get(peerId);
    if (!info) {
      await this.find();
      info = this.known.get(peerId);
    }
    if (!info) throw new Error(`${peerId} is not in swarm ${this.swarm}`);
    const offer = info.offer;
    info.offer = null; // an offer is answered once
    if (offer) {
      const link = new Link(this.rtcConfig());
      try {
        const answer = await link.answer(offer, this.offerId());
        await this.tracker.request("ATTACH", {
          swarm_id: this.swarm,
          target_peer_id: peerId,
          offer_id: offer.id,
          ice_offer: offerToJson(answer),
        });
        return await link.channel.opened();
      } catch (error) {
        link.close();
        if (error.status !== 404) throw error;
        this.log(`${peerId}'s offer was stale: reverse path`);
      }
    }
    return this.connectReverse(peerId);
  }

  async connectReverse(peerId) {
    const entry = await this.newOffer();
    this.published.delete(entry.offer.id); // offered to one peer, not to the pool
    try {
      const answered = new Promise((resolve) => this.awaitingAnswer.set(entry.offer.id, resolve));
      await this.tracker.request("ATTACH", {
        swarm_id: this.swarm,
        target_peer_id: peerId,
        ice_offer: offerToJson(entry.offer),
      });
      const answer = await Promise.race([
        answered,
        new Promise((_, reject) => setTimeout(() => reject(new Error("no answer in 15 s")), 15000)),
      ]);
      return await entry.link.acceptAnswer(answer);
    } catch (error) {
      entry.link.close();
      throw error;
    } finally {
      this.awaitingAnswer.delete(entry.offer.id);
    }
  }

  // An ATTACH indication (PROTOCOL §6): an answer to one of our offers, or
  // another peer's own offer for us to answer (the reverse path).
  async onAttach(data) {
    const remote = data.peer_info || {};
    const offer = offerFromJson(remote.ice_offer);
    if (!remote.peer_id || !offer) return;
    const waiting = data.offer_id && this.awaitingAnswer.get(data.offer_id);
    if (waiting) return waiting(offer);
    let link = null; // closed if the introduction fails
    try {
      let channel;
      if (!data.offer_id) {
        link = new Link(this.rtcConfig());
        const answer = await link.answer(offer, this.offerId());
        await this.tracker.request("ATTACH", {
          swarm_id: data.swarm_id,
          target_peer_id: remote.peer_id,
          offer_id: offer.id,
          ice_offer: offerToJson(answer),
        });
        channel = await link.channel.opened();
      } else if (this.published.has(data.offer_id)) {
        link = this.published.get(data.offer_id).link;
        this.published.delete(data.offer_id);
        this.topUp();
        channel = await link.acceptAnswer(offer);
      } else {
        channel = await this.connectReverse(remote.peer_id);
      }
      this.log(`channel from ${remote.peer_id} open (${await channel.pairTypes()})`);
      this.onChannel(channel, remote.peer_id);
    } catch (error) {
      if (link) link.close();
      this.log(`introduction from ${remote.peer_id} failed: ${error.message}`);
    }
  }

  close() {
    clearInterval(this.refreshTimer);
    for (const entry of this.published.values()) entry.link.close();
    this.published.clear();
  }
}
