// The stock sync server's few lines on automerge-repo 2.x, for the load benchmark:
// Repo + NodeWSServerAdapter + NodeFSStorageAdapter, sharePolicy: async () => false
// (announce nothing; access stays open, so the server answers requests for the
// documents it has). Binds 127.0.0.1 only.
// Usage: node server-2x.mjs <data-dir> [port]   (port 0 picks a free one)
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const [dir = ".amrg-2x", port = "0"] = process.argv.slice(2)
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(port) })
new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: "storage-server-2x",
  sharePolicy: async () => false,
})
wss.on("listening", () => {
  const { address, port } = wss.address()
  console.error(`listening on ${address}:${port}`)
})
