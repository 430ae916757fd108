// The tracker client of the page: RFC 7846 JSON documents over a WebSocket
// (PROTOCOL §14), one request outstanding per transaction id, ATTACH
// indications pushed by the tracker and acknowledged with ATTACH_ACK
// (PROTOCOL §6), keep-alive STAT_REPORTs, and a re-CONNECT with the
// reconnect token when the socket drops (PROTOCOL §3: the tracker restores
// every swarm the peer was in).

const REQUEST_TIMEOUT_MS = 15000;
const PART_WAIT_MS = 1000;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000];

export class TrackerError extends Error {
  constructor(answer) {
    super(`${answer.status} ${answer.response_type}${answer.reason ? ` (${answer.reason})` : ""}`);
    this.status = answer.status;
  }
}

export function randomId(bytes = 8) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

// Offers between the page's form ({ip, port, type, ...}) and the JSON
// binding's ({ip_address: {address_type, address}, port, type, ...}).
export function offerToJson(offer) {
  return {
    id: offer.id,
    ufrag: offer.ufrag,
    pwd: offer.pwd,
    fingerprint: offer.fingerprint,
    candidates: offer.candidates.map((c) => ({
      ip_address: { address_type: c.ip.includes(":") ? "ipv6" : "ipv4", address: c.ip },
      port: c.port,
      type: c.type,
      priority: c.priority,
      foundation: c.foundation,
    })),
  };
}

export function offerFromJson(json) {
  if (!json) return null;
  return {
    id: json.id,
    ufrag: json.ufrag,
    pwd: json.pwd,
    fingerprint: json.fingerprint,
    candidates: (json.candidates || []).map((c) => ({
      ip: c.ip_address.address,
      port: c.port,
      type: c.type,
      priority: c.priority,
      foundation: c.foundation,
    })),
  };
}

export class Tracker extends EventTarget {
  constructor(url, peerId, log) {
    super();
    this.url = url;
    this.peerId = peerId;
    this.log = log;
    this.pending = new Map(); // transaction id -> {resolve, reject, parts}
    this.token = null;
    this.keepAlive = 25;
    this.turnServers = [];
    this.socket = null;
    this.closed = false;
    this.connected = null; // the CONNECT answer
    this.keepAliveTimer = null;
  }

  // Open the socket and CONNECT (with the token, if we had one: re-CONNECT).
  async connect() {
    await this.open();
    const data = this.token ? { reconnect_token: this.token } : {};
    const answer = await this.request("CONNECT", data);
    const d = answer.response_data || {};
    this.token = d.reconnect_token || this.token;
    this.keepAlive = d.keep_alive || this.keepAlive;
    this.turnServers = d.turn_server || [];
    this.connected = answer;
    clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = setInterval(() => this.sendKeepAlive(), this.keepAlive * 1000);
    return answer;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      socket.addEventListener("open", () => {
        this.socket = socket;
        resolve();
      });
      socket.addEventListener("error", () => reject(new Error(`cannot open ${this.url}`)));
      socket.addEventListener("message", (event) => this.onMessage(event.data));
      socket.addEventListener("close", () => this.onClose(socket));
    });
  }

  onMessage(text) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch {
      return this.log("tracker sent something that is not JSON");
    }
    if (doc.indication_type) return this.onIndication(doc);
    const waiter = this.pending.get(doc.transaction_id);
    if (!waiter) return;
    const part = doc.response_data && doc.response_data.part;
    if (part && part.count > 1) {
      // PROTOCOL §4: every part is a complete answer; merge their peer lists.
      waiter.parts.push(doc);
      if (waiter.parts.length < part.count) {
        waiter.partTimer ??= setTimeout(() => this.settle(doc.transaction_id), PART_WAIT_MS);
        return;
      }
    } else {
      waiter.parts.push(doc);
    }
    this.settle(doc.transaction_id);
  }

  settle(transactionId) {
    const waiter = this.pending.get(transactionId);
    if (!waiter) return;
    this.pending.delete(transactionId);
    clearTimeout(waiter.timer);
    clearTimeout(waiter.partTimer);
    const [first, ...rest] = waiter.parts;
    const merged = structuredClone(first);
    const data = (merged.response_data ||= {});
    for (const more of rest) {
      data.peer_group = [...(data.peer_group || []), ...(more.response_data.peer_group || [])];
    }
    if (first.error_code === 0) waiter.resolve(merged); // RFC 7846: 0 is "no error"
    else waiter.reject(new TrackerError(first));
  }

  // PROTOCOL §6: acknowledge first (the tracker resends until we do), then act.
  onIndication(doc) {
    const data = doc.indication_data || {};
    this.request("ATTACH_ACK", { swarm_id: data.swarm_id, indication_id: doc.transaction_id }).catch(
      (error) => this.log(`ATTACH_ACK failed: ${error.message}`),
    );
    this.dispatchEvent(new CustomEvent("attach", { detail: data }));
  }

  onClose(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    for (const [id, waiter] of this.pending) {
      waiter.reject(new Error("the tracker connection closed"));
      this.pending.delete(id);
    }
    if (!this.closed) this.reconnect();
  }

  // A lost socket is a lost association: re-CONNECT with our token (PROTOCOL §3).
  async reconnect() {
    for (let attempt = 0; !this.closed; attempt++) {
      const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        const answer = await this.connect();
        this.log("re-CONNECTed to the tracker");
        this.dispatchEvent(new CustomEvent("reconnected", { detail: answer }));
        return;
      } catch (error) {
        this.log(`re-CONNECT failed: ${error.message}`);
      }
    }
  }

  request(requestType, data = {}) {
    if (!this.socket) return Promise.reject(new Error("not connected to the tracker"));
    const transactionId = randomId();
    const doc = {
      version: 1,
      request_type: requestType,
      transaction_id: transactionId,
      peer_id: this.peerId,
      request_data: data,
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transactionId);
        reject(new Error(`${requestType}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transactionId, { resolve, reject, timer, parts: [] });
      this.socket.send(JSON.stringify(doc));
    });
  }

  sendKeepAlive() {
    // PROTOCOL §3: a STAT_REPORT without statistics renews the track timer.
    this.request("STAT_REPORT").catch((error) => this.log(`keep-alive: ${error.message}`));
  }

  async close() {
    this.closed = true;
    clearInterval(this.keepAliveTimer);
    if (this.socket) {
      await this.request("DISCONNECT", { swarm_id: "nil" }).catch(() => {});
      this.socket.close();
    }
  }
}
