// Prints the gzipped size of the built app's JavaScript and CSS (what a phone
// downloads on its first visit; the service worker keeps it afterwards).
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const dir = new URL("../dist/assets/", import.meta.url).pathname;
import { existsSync } from "node:fs";
if (!existsSync(dir)) process.exit(0); // built elsewhere (--outDir)
let raw = 0;
let gz = 0;
let wasm;
const rows = [];
for (const f of readdirSync(dir)) {
  if (f.endsWith(".wasm")) {
    const bytes = readFileSync(join(dir, f));
    wasm = { raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
    continue;
  }
  if (!/\.(js|css)$/.test(f)) continue;
  const bytes = readFileSync(join(dir, f));
  const z = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += z;
  rows.push(`  ${f}: ${(bytes.length / 1024).toFixed(1)} KiB, gzipped ${(z / 1024).toFixed(1)} KiB`);
}
console.log(rows.join("\n"));
if (wasm) console.log(`automerge wasm: ${(wasm.raw / 1024).toFixed(1)} KiB, gzipped ${(wasm.gz / 1024).toFixed(1)} KiB`);
console.log(`app size: JS+CSS ${(raw / 1024).toFixed(1)} KiB, gzipped ${(gz / 1024).toFixed(1)} KiB`);
