// Shared pieces of the UI: the device context, document hooks, fields that write
// through to Automerge, and the status badge.

import { createContext } from "preact";
import { useContext, useEffect, useId, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { A, type Device, type DocHandle, type DocumentId, STATUS_LABEL } from "./sync";

export const DeviceContext = createContext<Device | undefined>(undefined);

export function useDevice(): Device {
  const device = useContext(DeviceContext);
  if (!device) throw new Error("no device");
  return device;
}

/** Re-renders on every device event (status, connection, index). */
export function useDeviceTick() {
  const device = useDevice();
  const [, set] = useState(0);
  useEffect(() => {
    const off = device.subscribe(() => set(n => n + 1));
    // Effects run after paint: whatever changed between the render and now was
    // not heard, so render once more.
    set(n => n + 1);
    return off;
  }, [device]);
  return device;
}

export type Loaded<T> = { state: "loading" } | { state: "missing" } | { state: "ready"; handle: DocHandle<T>; doc: T };

/** Opens a document and re-renders on each of its changes. */
export function useDoc<T = any>(id: DocumentId | undefined): Loaded<T> {
  const device = useDevice();
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  useEffect(() => {
    if (!id) {
      setLoaded({ state: "missing" });
      return;
    }
    let handle: DocHandle<T> | undefined;
    let cancelled = false;
    const onChange = () => handle && setLoaded({ state: "ready", handle, doc: handle.doc() as T });
    setLoaded({ state: "loading" });
    device.open<T>(id).then(h => {
      if (cancelled) return;
      if (!h) return setLoaded({ state: "missing" });
      handle = h;
      h.on("change", onChange);
      onChange();
    });
    return () => {
      cancelled = true;
      handle?.off("change", onChange);
    };
  }, [device, id]);
  return loaded;
}

export function StatusBadge({ id }: { id: DocumentId }) {
  const device = useDeviceTick();
  const status = device.status(id);
  return (
    <span class={`status status-${status}`} data-status={status} role="status" aria-live="polite">
      {STATUS_LABEL[status]}
    </span>
  );
}

function getPath(doc: any, path: (string | number)[]) {
  return path.reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), doc);
}

/** Writes prose into an Automerge text field, keystroke by keystroke. */
export function TextField(props: {
  handle: DocHandle<any>;
  doc: any;
  path: (string | number)[];
  label: string;
  multiline?: boolean;
  hint?: string;
  readOnly?: boolean;
  testId?: string;
}) {
  const device = useDevice();
  const id = useId();
  const remote = String(getPath(props.doc, props.path) ?? "");
  const [value, setValue] = useState(remote);
  const focused = useRef(false);
  useEffect(() => {
    if (!focused.current) setValue(remote);
  }, [remote]);
  const onInput = (e: Event) => {
    const v = (e.target as HTMLInputElement).value;
    setValue(v);
    void device.change(props.handle, (d: any) => {
      const parent = getPath(d, props.path.slice(0, -1));
      const key = props.path[props.path.length - 1];
      if (parent === undefined) return;
      if (typeof parent[key] === "string") A.updateText(d, props.path as any, v);
      else parent[key] = v;
    });
  };
  const common = {
    id,
    value,
    onInput,
    readOnly: props.readOnly,
    onFocus: () => (focused.current = true),
    onBlur: () => {
      focused.current = false;
      setValue(String(getPath(props.handle.doc(), props.path) ?? ""));
    },
    "data-testid": props.testId,
    "aria-describedby": props.hint ? `${id}-hint` : undefined,
  };
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.hint && (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      )}
      {props.multiline ? <textarea rows={4} {...common} /> : <input type="text" {...common} />}
    </div>
  );
}

export function Field(props: { label: string; children: (id: string) => ComponentChildren; hint?: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.hint && <p class="hint">{props.hint}</p>}
      {props.children(id)}
    </div>
  );
}

export function Page(props: { title: string; children: ComponentChildren; back?: string; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · coachsync`;
  }, [props.title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <div class="page-head">
        {props.back && (
          <a class="back" href={props.back}>
            ← Back
          </a>
        )}
        <h1 id="page-title" tabIndex={-1}>
          {props.title}
        </h1>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}

export const fmtDate = (ms: number) => new Date(ms).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
export const fmtTime = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
