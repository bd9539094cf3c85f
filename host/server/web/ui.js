// Small shared pieces: a modal dialog, a number input that does not fight the typist, a
// hook for one async action (busy + error), the access check as a hook, pictures served
// behind the token, and formatters.

import { html, useEffect, useLayoutEffect, useRef, useState } from './vendor/preact-htm.js';
import { useStore } from './store.js';
import { getBlob } from './api.js';
import { can } from './access.js';

/** `allowed(action)` for the current session (see access.js). */
export function useCan() {
  const auth = useStore((s) => s.auth);
  return (action) => can({ signedIn: auth.signedIn, role: auth.role }, action);
}

/**
 * Re-renders every `ms` milliseconds (0: not at all), for clocks and countdowns; calls
 * `onTick` first when given (a poll).
 */
export function useTick(ms, onTick) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (!ms) return undefined;
    const t = setInterval(() => {
      if (onTick) onTick();
      tick((n) => n + 1);
    }, ms);
    return () => clearInterval(t);
  }, [ms]);
}

/**
 * A picture the API serves behind the token (thumbnails), as a blob: URL; fetched again
 * every `refreshMs` (0: once) and whenever `path` or `key` changes. `null` while there is
 * none (not yet, or the server has no picture: 404 `no_picture`).
 */
export function useApiPicture(path, refreshMs = 0, key = '') {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    if (!path) { setUrl(null); return undefined; }
    let alive = true;
    let current = null;
    let timer = null;
    const show = (next) => {
      if (current) URL.revokeObjectURL(current);
      current = next;
      setUrl(next);
    };
    const load = async () => {
      try {
        const blob = await getBlob(path);
        if (alive) show(URL.createObjectURL(blob));
      } catch (e) {
        if (alive && e.status === 404) show(null);
      }
      if (alive && refreshMs) timer = setTimeout(load, refreshMs);
    };
    load();
    return () => {
      alive = false;
      clearTimeout(timer);
      if (current) URL.revokeObjectURL(current);
    };
  }, [path, refreshMs, key]);
  return url;
}

/** One async action of a control: `run(fn)` sets busy and keeps the error for display. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, clear: () => setError(null) };
}

/**
 * A number field that keeps what is typed ("1.", "-") while `value` is a number or
 * undefined (empty). `onValue` gets a number, NaN for garbage, or undefined.
 */
export function NumberInput({ value, onValue, ...attrs }) {
  const parse = (t) => (t.trim() === '' ? undefined : Number(t));
  const [text, setText] = useState(value == null ? '' : String(value));
  useEffect(() => {
    const mine = parse(text);
    if (!Object.is(mine, value) && !(Number.isNaN(mine) && Number.isNaN(value))) setText(value == null ? '' : String(value));
  }, [value]);
  return html`<input type="number" inputmode="decimal" ...${attrs} value=${text}
    onInput=${(e) => { setText(e.target.value); onValue(parse(e.target.value)); }} />`;
}

/**
 * A modal <dialog>: open while mounted, focus on `initialFocus` (a ref) or the first
 * control; onClose when it closes (Escape). The browser keeps focus inside it.
 */
export function Dialog({ testid, title, onClose, initialFocus, children, labelId }) {
  const ref = useRef();
  // Layout effect: open and focused before the browser paints, so a click lands on the dialog.
  useLayoutEffect(() => {
    const d = ref.current;
    if (!d.open) d.showModal();
    const target = initialFocus && initialFocus.current;
    if (target) target.focus();
    return () => { if (d.open) d.close(); };
  }, []);
  // Escape closes a modal dialog natively; its `close` event tells the owner.
  return html`<dialog ref=${ref} data-testid=${testid} aria-labelledby=${labelId} onClose=${onClose}>
    <h2 id=${labelId}>${title}</h2>
    ${children}
  </dialog>`;
}

export function ErrorText({ error, testid }) {
  if (!error) return null;
  return html`<p class="error-text" role="alert" data-testid=${testid}>${error.message || String(error)}</p>`;
}

// Formatters -----------------------------------------------------------------------------

export const fmt = {
  num(v, digits = 0) {
    return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
  },
  bits(v) {
    if (typeof v !== 'number') return '–';
    if (v >= 1e6) return `${(v / 1e6).toFixed(2)} Mbit/s`;
    return `${(v / 1e3).toFixed(0)} kbit/s`;
  },
  bytes(v) {
    if (typeof v !== 'number') return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let n = v;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
  duration(ms) {
    if (typeof ms !== 'number') return '–';
    const s = Math.floor(ms / 1000);
    const hh = String(Math.floor(s / 3600)).padStart(2, '0');
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
    const ss = String(s % 60).padStart(2, '0');
    return `${hh}:${mm}:${ss}`;
  },
  time(d) {
    return d.toLocaleTimeString([], { hour12: false });
  },
};

/** A testid-safe form of an id (ids are [A-Za-z0-9_-] already; this is a guard). */
export const tid = (prefix, id) => `${prefix}-${String(id).replace(/[^A-Za-z0-9_-]/g, '_')}`;
