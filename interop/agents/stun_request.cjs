// npm `stun` (pinned in ../package-lock.json): one Binding request to the
// server given as HOST PORT; prints {"mapped": "ip:port"} from XOR-MAPPED-ADDRESS.
"use strict";
const stun = require("stun");

const [host, port] = process.argv.slice(2);
stun
  .request(`${host}:${port}`, { timeout: 1000, retries: 3 })
  .then((res) => {
    const a = res.getXorAddress();
    console.log(JSON.stringify({ mapped: `${a.address}:${a.port}` }));
    process.exit(0);
  })
  .catch((err) => {
    console.error(`stun: ${err}`);
    process.exit(1);
  });
