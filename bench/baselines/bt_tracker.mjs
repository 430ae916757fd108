// WebTorrent's bittorrent-tracker answering BEP 15 UDP announces (what a user
// might run instead of our tracker). Prints "listening udp HOST:PORT".
// Run from bench/ after `npm ci --ignore-scripts` (package-lock.json pins it).
import Server from 'bittorrent-tracker/server'

const port = Number(process.argv[2] || 0)
const server = new Server({ udp: true, http: false, ws: false, stats: false, trustProxy: false })
server.on('error', (err) => { console.error(`error ${err.message}`); process.exit(1) })
server.on('warning', () => {})
server.on('listening', () => {
  console.log(`listening udp 127.0.0.1:${server.udp.address().port}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
server.listen(port, { udp: '127.0.0.1', udp6: '::1' })
