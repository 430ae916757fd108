// The page's glue: form -> tracker client -> peer -> transfer (PROTOCOL §6, §14).
// window.browserPeer exposes the state for scripts and tests.

import { Peer } from "./peer.js";
import { Tracker, randomId } from "./tracker.js";
import { describe, fetchFile, serve } from "./transfer.js";

const $ = (id) => document.getElementById(id);
const FIND_INTERVAL_MS = 2000;
const GIVE_UP_AFTER_MS = 120000;

const state = { phase: "loading", sha256: null, size: null, received: 0, error: null, peerId: null };
window.browserPeer = state;
const listeners = [];
function set(changes) {
  Object.assign(state, changes);
  $("state").textContent = state.error ? `${state.phase}: ${state.error}` : state.phase;
  for (const listener of listeners.splice(0)) listener();
}
// A promise that resolves (with the state) once predicate(state) holds.
state.until = (predicate) =>
  new Promise((resolve) => {
    const check = () => (predicate(state) ? resolve(state) : listeners.push(check));
    check();
  });

function log(line) {
  const stamp = new Date().toISOString().slice(11, 23);
  $("log").textContent += `${stamp} ${line}\n`;
  $("log").scrollTop = $("log").scrollHeight;
  console.log(line);
}

// Defaults from the page's own origin: the WebSocket at /ppsp/ws (PROTOCOL
// §14.8) and the tracker's STUN service on its UDP port (PROTOCOL §5), which
// the tracker names in /peer/config.json ({"stun_port"}); ?tracker=,
// ?stun=HOST:PORT, ?swarm= and ?relay=1 override.
async function config() {
  const params = new URLSearchParams(location.search);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const out = { ws: `${scheme}//${location.host}/ppsp/ws`, stun_port: 3478 };
  try {
    const answer = await fetch("config.json");
    if (answer.ok) Object.assign(out, await answer.json());
  } catch {
    // no config route: the defaults
  }
  if (out.ws.startsWith("/")) out.ws = `${scheme}//${location.host}${out.ws}`;
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  out.stun = `stun:${params.get("stun") || `${host}:${out.stun_port}`}`;
  for (const name of ["swarm", "tracker"]) if (params.get(name)) $(name).value = params.get(name);
  if (!params.get("tracker")) $("tracker").value = out.ws;
  if (params.get("relay") === "1") $("relay-only").checked = true;
  return out;
}

// One identity per tab, kept across reloads with its reconnect token, so a
// reload re-CONNECTs (PROTOCOL §3) instead of registering a new peer.
function identity() {
  let peerId = sessionStorage.getItem("peerId");
  if (!peerId) {
    peerId = `web-${randomId(6)}`;
    sessionStorage.setItem("peerId", peerId);
  }
  return { peerId, token: sessionStorage.getItem("reconnectToken") };
}

let settings;
let peer;

async function start(mode) {
  if (peer) throw new Error("already in a swarm (reload the page to start over)");
  const { peerId, token } = identity();
  const tracker = new Tracker($("tracker").value, peerId, log);
  tracker.token = token;
  set({ phase: "connecting", peerId, error: null });
  const connected = await tracker.connect();
  sessionStorage.setItem("reconnectToken", tracker.token || "");
  // After a reload: the swarms the tracker restored to this identity (PROTOCOL §3).
  set({ restored: (connected.response_data || {}).swarm_ids || [] });
  tracker.addEventListener("reconnected", () => {
    sessionStorage.setItem("reconnectToken", tracker.token || "");
    set({ reconnects: (state.reconnects || 0) + 1 });
  });
  log(`connected as ${peerId}; TURN servers: ${tracker.turnServers.length}`);
  peer = new Peer(tracker, { relayOnly: $("relay-only").checked, stunUrl: settings.stun, log });
  window.browserPeerDebug = { tracker, peer }; // for tests: drop the socket, inspect offers
  return peer;
}

async function share() {
  const file = $("file").files[0];
  if (!file) throw new Error("choose a file first");
  const shared = await describe(file);
  $("sha256").textContent = shared.sha256;
  await start("SEED");
  peer.onChannel = (channel, from) => {
    log(`serving ${shared.name} to ${from}`);
    serve(channel, shared).then(
      () => set({ served: (state.served || 0) + 1 }),
      (error) => log(`serving ${from} failed: ${error.message}`),
    );
  };
  await peer.join($("swarm").value, "SEED");
  set({ phase: "seeding", sha256: shared.sha256, size: shared.size, served: 0 });
  log(`seeding ${shared.name} (${shared.size} bytes, sha256 ${shared.sha256})`);
}

async function leech() {
  await start("LEECH");
  peer.onChannel = (channel) => channel.close(0); // a leech serves nothing
  await peer.join($("swarm").value, "LEECH");
  set({ phase: "looking for a seeder" });
  const deadline = Date.now() + GIVE_UP_AFTER_MS;
  let lastError = "no seeder in the swarm";
  while (Date.now() < deadline) {
    for (const seeder of peer.seeders()) {
      try {
        log(`connecting to ${seeder}`);
        const channel = await peer.connect(seeder);
        const pair = await channel.pairTypes();
        log(`channel to ${seeder} open (${pair})`);
        set({ phase: "fetching", pair });
        const got = await fetchFile(channel, (received, size) => {
          $("progress").max = size || 1;
          $("progress").value = received;
          if (received === size || received - state.received > 65536) set({ received, size });
        });
        await channel.close();
        offerDownload(got);
        set({ phase: "fetched", sha256: got.sha256, size: got.size, received: got.size, seeder });
        log(`fetched ${got.name} (${got.size} bytes, sha256 ${got.sha256} verified)`);
        return;
      } catch (error) {
        lastError = `${seeder}: ${error.message}`;
        log(`transfer from ${seeder} failed: ${error.message}`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, FIND_INTERVAL_MS)); // poll for seeders
    await peer.find();
  }
  throw new Error(`gave up: ${lastError}`);
}

function offerDownload(got) {
  const link = $("download");
  link.href = URL.createObjectURL(new Blob([got.bytes]));
  link.download = got.name;
  link.hidden = false;
  $("sha256").textContent = got.sha256;
}

function run(action) {
  action().catch((error) => {
    log(`error: ${error.message}`);
    set({ phase: "failed", error: error.message });
  });
}

settings = await config();
$("share").addEventListener("click", () => run(share));
$("fetch").addEventListener("click", () => run(leech));
set({ phase: "idle" });
