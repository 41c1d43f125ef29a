// Low-level CBOR inspection for the fixture tools.
//
// cbor-x hides how a value was written (a float64 that holds an integer decodes
// to the same JS number as a uint), so this walker reads the raw bytes and
// reports, for every item, how it is encoded on the wire. Paths are JSON
// pointers ("" is the top-level item, "/peerMetadata/storageId" a nested key).

const KIND_BY_MAJOR = ["uint", "nint", "bytes", "text", "array", "map", "tag"];

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

function escapePointer(token) {
  return String(token).replaceAll("~", "~0").replaceAll("/", "~1");
}

/**
 * Walks one CBOR item that must span the whole buffer.
 * Returns { value, wire } where `value` is a plain JS value (byte strings as
 * Uint8Array, CBOR undefined as undefined, integers beyond 2^53 as BigInt) and
 * `wire` maps each JSON pointer to a description such as "map b90005",
 * "text 64", "bytes 5896", "uint 01", "float64 fb", "undefined f7".
 */
export function inspectCbor(input) {
  const buf = input instanceof Uint8Array ? input : new Uint8Array(input);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const wire = {};
  let pos = 0;

  function need(n) {
    if (pos + n > buf.length) throw new Error(`truncated CBOR at offset ${pos}`);
  }

  function readArgument(ai) {
    if (ai < 24) return { arg: ai, size: 0 };
    if (ai === 24) { need(1); return { arg: buf[pos], size: 1 }; }
    if (ai === 25) { need(2); return { arg: view.getUint16(pos), size: 2 }; }
    if (ai === 26) { need(4); return { arg: view.getUint32(pos), size: 4 }; }
    if (ai === 27) {
      need(8);
      const big = view.getBigUint64(pos);
      return { arg: big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big, size: 8 };
    }
    if (ai === 31) return { arg: null, size: 0 }; // indefinite length
    throw new Error(`reserved additional info ${ai} at offset ${pos - 1}`);
  }

  function item(path) {
    need(1);
    const start = pos;
    const initial = buf[pos++];
    const major = initial >> 5;
    const ai = initial & 0x1f;

    if (major === 7) {
      const simple = { 20: false, 21: true, 22: null, 23: undefined };
      if (ai in simple) {
        wire[path] = `${["false", "true", "null", "undefined"][ai - 20]} ${hex([initial])}`;
        return simple[ai];
      }
      if (ai === 25) { need(2); const v = getFloat16(view, pos); pos += 2; wire[path] = `float16 ${hex([initial])}`; return v; }
      if (ai === 26) { need(4); const v = view.getFloat32(pos); pos += 4; wire[path] = `float32 ${hex([initial])}`; return v; }
      if (ai === 27) { need(8); const v = view.getFloat64(pos); pos += 8; wire[path] = `float64 ${hex([initial])}`; return v; }
      throw new Error(`unsupported simple value 0x${initial.toString(16)} at offset ${start}`);
    }

    const { arg, size } = readArgument(ai);
    pos += size;
    const head = hex(buf.subarray(start, pos));
    const kind = KIND_BY_MAJOR[major];
    if (arg === null && (major < 2 || major === 6)) {
      throw new Error(`indefinite length not allowed for major type ${major} at offset ${start}`);
    }
    wire[path] = `${kind}${arg === null ? " (indefinite)" : ""} ${head}`;

    switch (major) {
      case 0:
        return arg;
      case 1:
        return typeof arg === "bigint" ? -1n - arg : -1 - arg;
      case 2:
      case 3: {
        if (arg === null) throw new Error(`indefinite-length string at offset ${start}`);
        need(arg);
        const bytes = buf.slice(pos, pos + arg);
        pos += arg;
        return major === 2 ? bytes : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      }
      case 4: {
        const out = [];
        for (let i = 0; arg === null ? buf[pos] !== 0xff : i < arg; i++) {
          out.push(item(`${path}/${i}`));
        }
        if (arg === null) pos++;
        return out;
      }
      case 5: {
        const out = {};
        for (let i = 0; arg === null ? buf[pos] !== 0xff : i < arg; i++) {
          const keyStart = pos;
          const key = item(`${path}/<key ${i}>`);
          delete wire[`${path}/<key ${i}>`];
          if (typeof key !== "string") {
            throw new Error(`non-text map key at offset ${keyStart}`);
          }
          out[key] = item(`${path}/${escapePointer(key)}`);
        }
        if (arg === null) pos++;
        return out;
      }
      case 6: {
        wire[path] = `tag(${arg}) ${head}`;
        return { tag: arg, value: item(`${path}/<tagged>`) };
      }
    }
    throw new Error("unreachable");
  }

  const value = item("");
  if (pos !== buf.length) {
    throw new Error(`${buf.length - pos} trailing bytes after the CBOR item`);
  }
  return { value, wire };
}

function getFloat16(view, pos) {
  const half = view.getUint16(pos);
  const exp = (half >> 10) & 0x1f;
  const mant = half & 0x3ff;
  const sign = half & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/** Pointers whose wire description starts with `kind` (e.g. "float64"). */
export function pointersOfKind(wire, kind) {
  return Object.entries(wire)
    .filter(([, d]) => d.split(" ")[0] === kind)
    .map(([p]) => p);
}

/**
 * Converts a decoded value to JSON-friendly form: byte strings become lowercase
 * hex strings, CBOR undefined becomes null, BigInt becomes a decimal string.
 */
export function toJsonValue(value) {
  if (value instanceof Uint8Array) return hex(value);
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

export { hex };
