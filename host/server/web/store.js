// The page's one state object and a hook to read slices of it. Updates replace the changed
// slices (never mutate), so a component re-renders only when the slice it selected changed —
// previews arrive several times a second and must not re-render the whole page.

import { useEffect, useReducer, useRef } from './vendor/preact-htm.js';

function stored(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : v === '1';
  } catch { return fallback; }
}

export function remember(key, on) {
  try { localStorage.setItem(key, on ? '1' : '0'); } catch { /* private mode */ }
}

let state = {
  conn: { status: 'connecting', attempt: 0, retryAt: 0 },
  auth: { required: false, error: '', signedIn: false, role: null, name: null },
  stream: null, // StreamState
  config: null, // StreamConfig
  metrics: null, // StreamMetrics of the last metricsUpdate
  health: null,
  preview: null, // {src, width, height, frameNumber, timestamp, receivedAt}
  scene: null, // the active scene
  scenes: [], // [{id, name, active, layers}]
  templates: [],
  inputs: [],
  media: [],
  assets: [],
  recordings: [], // newest first
  audio: null, // AudioSettings: {master: {gainDb, muted}, limiter}
  levels: null, // the last audioLevels: {program, sources}; null when none came lately
  nextScene: null, // the rundown's selection ("NEXT")
  selectedLayer: null,
  transition: { kind: 'fade', durationMs: 500 },
  locked: stored('stream-manager.rundownLocked', false),
  shortcuts: stored('stream-manager.shortcuts', true),
  log: [],
  confirm: null, // {title, message, confirmLabel, onConfirm, ids}
  help: false,
  secret: null, // a new RTMP input's push URL and key, shown once
};

const listeners = new Set();

export const getState = () => state;

/** Merges `patch` (an object, or a function of the state returning one) into the state. */
export function setState(patch) {
  const p = typeof patch === 'function' ? patch(state) : patch;
  if (!p) return;
  state = { ...state, ...p };
  for (const l of listeners) l();
}

/** The selected slice; re-renders the component when it changes (Object.is). */
export function useStore(select) {
  const [, force] = useReducer((n) => n + 1, 0);
  const value = select(state);
  const ref = useRef();
  ref.current = { select, value };
  useEffect(() => {
    const check = () => {
      if (!Object.is(ref.current.select(state), ref.current.value)) force();
    };
    listeners.add(check);
    check(); // a change between render and subscription
    return () => listeners.delete(check);
  }, []);
  return value;
}

let logSeq = 0;
const LOG_MAX = 200;

/** Adds a line to the log panel: level 'error' | 'warn' | 'info'. */
export function log(level, message, { code = '', component = '' } = {}) {
  const entry = { id: ++logSeq, time: new Date(), level, message, code, component };
  setState((s) => ({ log: [entry, ...s.log].slice(0, LOG_MAX) }));
}
