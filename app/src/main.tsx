import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { SignedInApp, SignedOutApp, useHash } from "./app";
import { loadSession, refreshProfile, type Session, wipeIfRequested } from "./session";
import { Device, initAutomerge } from "./sync";
import "./styles.css";

declare global {
  interface Window {
    coachsync?: { device?: Device; ready: boolean; bootMs?: number };
  }
}

const t0 = performance.now();
window.coachsync = { ready: false };

function Root({ initial }: { initial?: Session }) {
  const hash = useHash();
  const [device, setDevice] = useState<Device | undefined>(() => (initial ? startDevice(initial) : undefined));
  useEffect(() => {
    window.coachsync = { device, ready: true, bootMs: performance.now() - t0 };
    document.documentElement.dataset.ready = "1";
  }, [device]);
  if (!device) return <SignedOutApp hash={hash} onSignedIn={s => void initAutomerge().then(() => setDevice(startDevice(s)))} />;
  return <SignedInApp device={device} hash={hash} />;
}

function startDevice(session: Session): Device {
  sessionStorage.removeItem("cs:signed-out");
  const device = new Device(session);
  void device.loadOutbox();
  // Relationships change on the server; the cached copy serves offline.
  refreshProfile(session)
    .then(updated => {
      (device as any).session.relationships = updated.relationships;
      (device as any).session.user = updated.user;
    })
    .catch(e => {
      if (e?.message === "unauthorized") device.refuseToken();
    })
    // Every document this user may read, from the server's list (the last list offline).
    .finally(() => device.refreshDocs());
  return device;
}

async function boot() {
  await wipeIfRequested();
  const session = loadSession();
  // Signed out, nothing needs automerge: loading it would put its wasm back in the
  // cache that sign-out just emptied.
  if (session) await initAutomerge();
  if ("serviceWorker" in navigator && import.meta.env.PROD) {
    navigator.serviceWorker.register("/sw.js").catch(e => console.warn("service worker:", e));
  }
  const app = document.getElementById("app")!;
  app.textContent = "";
  render(<Root initial={session} />, app);
}

void boot();
