// The file transfer on a channel, as stunlike_tracker/peer/transfer.py speaks it
// (one channel message each):
//   1. leecher -> seeder: "GET"
//   2. seeder -> leecher: a JSON header {"name", "size", "sha256", "chunk"}
//   3. seeder -> leecher: ceil(size / chunk) data messages
//   4. leecher -> seeder: "DONE" once the hash matched (the seeder then closes)

export const CHUNK = 256 * 1024;
const text = new TextDecoder();

export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// A file to share: {name, size, sha256, bytes}.
export async function describe(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  return { name: file.name, size: bytes.length, sha256: await sha256Hex(bytes), bytes };
}

// Seeder side of one transfer.
export async function serve(channel, shared) {
  try {
    const request = text.decode(await channel.recv(30000));
    if (request !== "GET") return;
    const { name, size, sha256 } = shared;
    await channel.send(JSON.stringify({ name, size, sha256, chunk: CHUNK }));
    for (let offset = 0; offset < size; offset += CHUNK) {
      await channel.send(shared.bytes.subarray(offset, offset + CHUNK));
    }
    await channel.recv(60000).catch(() => {}); // DONE
  } finally {
    await channel.close();
  }
}

// Leecher side: the whole file, its hash verified; onProgress(received, size).
export async function fetchFile(channel, onProgress) {
  await channel.send("GET");
  const header = JSON.parse(text.decode(await channel.recv(30000)));
  const size = Number(header.size);
  if (!(size >= 0) || typeof header.sha256 !== "string" || header.sha256.length !== 64) {
    throw new Error("bad header from seeder");
  }
  const bytes = new Uint8Array(size);
  let received = 0;
  onProgress(0, size);
  while (received < size) {
    const block = await channel.recv(30000);
    if (!block.length || received + block.length > size) {
      throw new Error("seeder sent more or less than announced");
    }
    bytes.set(block, received);
    received += block.length;
    onProgress(received, size);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== header.sha256) throw new Error(`hash mismatch: got ${digest}, want ${header.sha256}`);
  await channel.send("DONE").catch(() => {});
  return { name: String(header.name), size, sha256: digest, bytes };
}
