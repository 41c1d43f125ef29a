import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { defineConfig, type Plugin } from "vite";

// Writes dist/sw.js from src/sw.js with the list of files to precache (the whole
// app shell: every emitted file) and a version derived from their names, so a new
// build installs a new service worker and drops the old caches.
function serviceWorker(): Plugin {
  return {
    name: "coachsync-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle).filter(f => !f.endsWith(".map"));
      const assets = ["/", "/index.html", "/manifest.webmanifest", "/icon.svg", "/icon-192.png", "/icon-512.png", ...files.filter(f => f !== "index.html").map(f => `/${f}`)];
      const version = createHash("sha256").update(files.sort().join("\n")).digest("hex").slice(0, 12);
      const source = readFileSync(new URL("./src/sw.js", import.meta.url), "utf8")
        .replace("__ASSETS__", JSON.stringify([...new Set(assets)]))
        .replace("__VERSION__", JSON.stringify(version));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}

export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  resolve: {
    // One automerge, the slim build, whose wasm we load from base64 in the bundle.
    alias: [
      { find: /^@automerge\/automerge-repo$/, replacement: "@automerge/automerge-repo/slim" },
      { find: /^@automerge\/automerge$/, replacement: "@automerge/automerge/slim" },
    ],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 3000,
  },
  server: {
    fs: { allow: [".."] },
    proxy: {
      "/api": "http://127.0.0.1:3030",
      "/sync": { target: "ws://127.0.0.1:3030", ws: true },
    },
  },
  plugins: [serviceWorker()],
});
