// The app shell's service worker. Built into dist/sw.js by vite.config.ts, which
// fills in the precache list and the version.
//
// - Install: precache the whole shell (index.html, the hashed bundles, the manifest,
//   the icons), so that after one online visit the app opens with no network.
// - Navigations get the cached index.html at once (the app is a single page; its
//   routes live in the hash), refreshed in the background when online.
// - /assets/* are content-hashed: cache first.
// - /api and /sync never touch the cache: documents live in IndexedDB, and the
//   token must not end up in a cache.
const VERSION = __VERSION__;
const ASSETS = __ASSETS__;
const CACHE = `coachsync-shell-${VERSION}`;

self.addEventListener("install", event => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(cache => cache.addAll(ASSETS.map(url => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", event => {
  event.waitUntil(
    caches
      .keys()
      .then(keys => Promise.all(keys.filter(k => k.startsWith("coachsync-shell-") && k !== CACHE).map(k => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function put(request, response) {
  if (response && response.ok && response.type === "basic") {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

async function shell(request) {
  const cache = await caches.open(CACHE);
  const cached = (await cache.match("/index.html")) || (await cache.match("/"));
  const network = fetch(request)
    .then(response => (response.ok ? put("/index.html", response) : response))
    .catch(() => undefined);
  if (cached) return cached;
  const response = await network;
  return response || new Response("coachsync is offline and this device has no copy of the app yet.", { status: 503, headers: { "content-type": "text/plain" } });
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  return put(request, await fetch(request));
}

self.addEventListener("fetch", event => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/sync" || url.pathname === "/healthz" || url.pathname === "/metrics") return;
  if (request.mode === "navigate") {
    event.respondWith(shell(request));
    return;
  }
  event.respondWith(cacheFirst(request));
});
