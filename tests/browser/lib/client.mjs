// A plain automerge-repo JavaScript client (in Node, memory only) to read back what
// the app stored on the server, as another device would.
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { onCleanup, withTimeout } from "./harness.mjs";

export function jsClient(server, token, { tracked = true } = {}) {
  const repo = new Repo({
    network: [new WebSocketClientAdapter(`${server.wsUrl}?token=${encodeURIComponent(token)}`, 1000)],
    peerId: `test-${Math.random().toString(36).slice(2, 10)}`,
    sharePolicy: async () => true,
  });
  if (tracked) onCleanup(() => withTimeout(repo.shutdown(), 5000, "repo shutdown").catch(() => undefined));
  return repo;
}

/** The document's JSON as the server gives it to `token`, or "unavailable". */
export async function readFromServer(server, token, docId, timeout = 15_000) {
  const repo = jsClient(server, token, { tracked: false });
  try {
    const handle = await withTimeout(repo.find(`automerge:${docId}`, { signal: AbortSignal.timeout(timeout) }), timeout + 500, `find ${docId}`);
    return JSON.parse(JSON.stringify(handle.doc()));
  } catch (e) {
    if (/unavailable/i.test(e.message)) return "unavailable";
    throw e;
  } finally {
    await withTimeout(repo.shutdown(), 5000, "shutdown").catch(() => undefined);
  }
}
