#!/usr/bin/env node
// Prints the captured client frames (core/tests/fixtures/js-frames/*.cbor)
// decoded, with the CBOR encoding of every item, for humans.
//
//   node tests/js/frames.mjs                 all fixture files
//   node tests/js/frames.mjs sync-2.cbor     selected files (name or path)
//   node tests/js/frames.mjs --hex ...       also dump each frame in hex,
//                                            and print byte fields in full

import { readFileSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as A from "@automerge/automerge";
import { decode } from "cbor-x";

import { hex, inspectCbor } from "./cbor-wire.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, "..", "..", "core", "tests", "fixtures", "js-frames");
const BYTES_PREVIEW = 48;

const args = process.argv.slice(2);
const fullHex = args.includes("--hex");
const names = args.filter(a => a !== "--hex");
const files = names.length
  ? names.map(n => (n.includes("/") ? n : join(FIXTURES, n)))
  : readdirSync(FIXTURES)
      .filter(n => n.endsWith(".cbor"))
      .sort()
      .map(n => join(FIXTURES, n));

function escapePointer(token) {
  return String(token).replaceAll("~", "~0").replaceAll("/", "~1");
}

function describeBytes(key, bytes, frameType) {
  if (key === "data" && (frameType === "sync" || frameType === "request")) {
    try {
      const m = A.decodeSyncMessage(bytes);
      return `automerge sync message 0x${hex(bytes.subarray(0, 1))}: heads ${m.heads.length}, need ${m.need.length}, have ${m.have.length}, changes ${m.changes.length}`;
    } catch (err) {
      return `not an automerge sync message (${err.message})`;
    }
  }
  if (key === "data" && frameType === "ephemeral") {
    try {
      return `cbor-x payload: ${JSON.stringify(decode(bytes))}`;
    } catch (err) {
      return `payload does not decode as CBOR (${err.message})`;
    }
  }
  return null;
}

function render(value, wire, pointer, key, depth, frameType, lines) {
  const indent = "  ".repeat(depth);
  const label = key === null ? "" : `${key}: `;
  const enc = wire[pointer] ?? "?";
  if (value instanceof Uint8Array) {
    const shown = fullHex || value.length <= BYTES_PREVIEW
      ? hex(value)
      : `${hex(value.subarray(0, BYTES_PREVIEW))}…`;
    lines.push([`${indent}${label}<${value.length} bytes> ${shown}`, enc]);
    const about = describeBytes(key, value, frameType);
    if (about) lines.push([`${indent}  ↳ ${about}`, ""]);
  } else if (Array.isArray(value) && value.length === 0) {
    lines.push([`${indent}${label}[]`, enc]);
  } else if (Array.isArray(value)) {
    lines.push([`${indent}${label}[`, enc]);
    value.forEach((v, i) => render(v, wire, `${pointer}/${i}`, null, depth + 1, frameType, lines));
    lines.push([`${indent}]`, ""]);
  } else if (value && typeof value === "object") {
    lines.push([`${indent}${label}{`, enc]);
    for (const [k, v] of Object.entries(value)) {
      render(v, wire, `${pointer}/${escapePointer(k)}`, k, depth + 1, frameType, lines);
    }
    lines.push([`${indent}}`, ""]);
  } else {
    const shown = value === undefined ? "undefined" : typeof value === "bigint" ? `${value}n` : JSON.stringify(value);
    lines.push([`${indent}${label}${shown}`, enc]);
  }
}

let failures = 0;
for (const file of files) {
  const bytes = new Uint8Array(readFileSync(file));
  console.log(`== ${basename(file)} (${bytes.length} bytes) ==`);
  try {
    const { value, wire } = inspectCbor(bytes);
    const lines = [];
    render(value, wire, "", null, 0, value?.type, lines);
    const width = Math.min(72, Math.max(...lines.map(([l]) => l.length)) + 2);
    for (const [text, enc] of lines) {
      console.log(enc ? `${text.padEnd(width)} ${enc}` : text);
    }
  } catch (err) {
    failures++;
    console.log(`  cannot decode: ${err.message}`);
  }
  if (fullHex) console.log(`hex: ${hex(bytes)}`);
  console.log();
}
process.exitCode = failures ? 1 : 0;
