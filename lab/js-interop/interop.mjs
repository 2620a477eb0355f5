// A second libp2p implementation (js-libp2p) against a bitdust node: TCP + Noise + Yamux, identify, ping and
// a Kademlia GET of a bitdust identity record over the bitdust DHT protocol. Prints one JSON line.
// usage: node interop.mjs NODE_MULTIADDR PUBLISHER_PEER_ID
import './polyfill.mjs'
process.on('uncaughtException', e => console.error('uncaught:', e.message))
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'

const [target, publisher] = process.argv.slice(2)
const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    // bitdust records are signed and checked by bitdust itself; js-libp2p only carries them here
    dht: kadDHT({
      protocol: '/bitdust/kad/1.0.0',
      clientMode: true,
      peerInfoMapper: passthroughMapper,
      validators: { bitdust: async () => {} },
      selectors: { bitdust: () => 0 }
    })
  }
})
const identified = new Promise(resolve => node.addEventListener('peer:identify', e => resolve(e.detail), { once: true }))
const ma = multiaddr(target)
await node.dial(ma)
const info = await identified
let rtt = null
try {
  rtt = await node.services.ping.ping(ma)
} catch (e) {
  console.error('ping failed:', e.message)
}
const prefix = new TextEncoder().encode('/bitdust/identity/')
const id = peerIdFromString(publisher).toMultihash().bytes
const key = new Uint8Array(prefix.length + id.length)
key.set(prefix)
key.set(id, prefix.length)
let value = null
for await (const event of node.services.dht.get(key, { signal: AbortSignal.timeout(20000) })) {
  if (event.name === 'VALUE') { value = event.value; break }
}
console.log(JSON.stringify({
  remote: info.peerId.toString(),
  protocols: info.protocols,
  ping_ms: rtt,
  record_bytes: value ? value.length : 0,
  record_text: value ? new TextDecoder('utf-8', { fatal: false }).decode(value).replace(/[^\x20-\x7e]/g, '.') : ''
}))
await node.stop()
