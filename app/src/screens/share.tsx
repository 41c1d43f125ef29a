import { useState } from "preact/hooks";
import { grant } from "../session";
import type { DocumentId } from "../sync";
import { Field, useDevice } from "../ui";

/**
 * Sharing beyond the relationship: the server lets only a coaching document's client
 * share it with an evaluator (a supervisor); everyone else is refused and told why.
 */
export function ShareBox({ id }: { id: DocumentId }) {
  const device = useDevice();
  const [user, setUser] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const share = async (e: Event) => {
    e.preventDefault();
    const name = user.trim();
    if (!name) return;
    try {
      await grant(device.session, id, name, "read");
      setMessage({ ok: true, text: `Shared with ${name} (read only). Send them this link: ${location.origin}/#/doc/${id}` });
    } catch (err: any) {
      setMessage({ ok: false, text: navigator.onLine ? `Not shared: ${err.message}` : "Not shared: sharing needs a connection." });
    }
  };
  return (
    <section aria-labelledby="share-h" class="share">
      <h2 id="share-h">Share beyond the relationship</h2>
      <p class="hint">Only the leader being coached decides what their supervisor sees.</p>
      <form onSubmit={share} class="row">
        <Field label="User name to share with (read only)">
          {fid => <input id={fid} type="text" value={user} onInput={e => setUser((e.target as HTMLInputElement).value)} data-testid="share-user" />}
        </Field>
        <button type="submit" data-testid="share">
          Share
        </button>
      </form>
      {message && (
        <p role={message.ok ? "status" : "alert"} class={message.ok ? "notice" : "error"} data-testid="share-result">
          {message.text}
        </p>
      )}
    </section>
  );
}
