// REST and WebSocket client of the stream-manager API (docs/api.md).
//
// The bearer token lives in sessionStorage only: it is never put in a URL and never logged.
// REST calls send it as `Authorization: Bearer`; the WebSocket, on which a browser cannot set
// headers, offers it as the subprotocol `bearer.<base64url of its UTF-8 bytes>` beside
// `stream-manager` (the one the server answers with; see docs/api.md, WebSocket).

const TOKEN_KEY = 'stream-manager.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0 when the server could not be reached
    this.code = code;
  }
}

export const token = {
  get() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
  },
  set(value) { sessionStorage.setItem(TOKEN_KEY, value); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

// Called on every 401 (the page then asks for a token).
let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

function authHeaders(extra = {}) {
  const t = token.get();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

// `{"error": {"code", "message"}}` → ApiError; anything else keeps the status text.
function toError(status, text) {
  try {
    const { error } = JSON.parse(text);
    if (error && error.code) return new ApiError(status, error.code, error.message || error.code);
  } catch { /* not JSON */ }
  return new ApiError(status, `http_${status}`, text.trim().slice(0, 300) || `HTTP ${status}`);
}

function parseBody(text) {
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

/** JSON request; resolves with the parsed answer (null for 204), rejects with ApiError. */
export async function request(method, path, body) {
  const init = { method, cache: 'no-store', headers: authHeaders() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `server unreachable (${e.message})`);
  }
  const text = await res.text();
  if (res.status === 401) unauthorized();
  if (!res.ok) throw toError(res.status, text);
  return parseBody(text);
}

/** A picture (thumbnails): resolves with a Blob, rejects with ApiError. */
export async function getBlob(path) {
  let res;
  try {
    res = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `server unreachable (${e.message})`);
  }
  if (res.status === 401) unauthorized();
  if (!res.ok) throw toError(res.status, await res.text());
  return res.blob();
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const patch = (path, body) => request('PATCH', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);

/**
 * Sends a file as the raw body (assets, media, templates). XMLHttpRequest rather than fetch
 * because it reports upload progress (media files may be gigabytes).
 * Resolves with {status, body}: templates answer 200 for bytes the server has already.
 */
export function upload(method, path, file, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader('Content-Type', contentType);
    const t = token.get();
    if (t) xhr.setRequestHeader('Authorization', `Bearer ${t}`);
    if (onProgress) xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status === 401) unauthorized();
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body: parseBody(xhr.responseText) });
      else reject(toError(xhr.status, xhr.responseText || ''));
    };
    // A 413 may come with `Connection: close` before the body is sent: the browser then
    // reports a network error rather than the answer.
    xhr.onerror = () => reject(new ApiError(0, 'network', 'upload failed (connection closed; the file may be too large)'));
    xhr.send(file);
  });
}

export const id = (s) => encodeURIComponent(s);

/**
 * The feed's URL: `/ws` of the page's own origin (the server serves it next to the console,
 * and the page's CSP allows only its own origin), unless `<meta name="ws-url">` in
 * index.html names another.
 */
export function feedUrl() {
  const meta = document.querySelector('meta[name="ws-url"]');
  if (meta && meta.content) return new URL(meta.content, location.href).href;
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

/** The WebSocket subprotocols to offer: with a token, `stream-manager` and `bearer.<base64url>`. */
export function feedProtocols(t = token.get()) {
  return t ? ['stream-manager', `bearer.${base64url(t)}`] : [];
}

// base64url without padding of the UTF-8 bytes of `text`.
function base64url(text) {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const LOST_AFTER_FAILURES = 5; // ≈ 15 s of failed attempts
const SILENCE_MS = 5000; // metricsUpdate comes every second: 5 s of nothing is a dead link

/**
 * The WebSocket feed, reconnecting forever with exponential backoff (plus jitter).
 * onStatus({status: 'connecting'|'connected'|'reconnecting'|'lost', attempt, retryAt})
 * onOpen() after every (re)connect — the page then refreshes its whole state over REST.
 */
export class Feed {
  constructor({ url, onMessage, onStatus, onOpen }) {
    Object.assign(this, { url, onMessage, onStatus, onOpen });
    this.failures = 0;
    this.ws = null;
    this.timer = 0;
    this.watchdog = 0;
    this.stopped = true;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.emit('connecting');
    this.connect();
    this.watchdog = setInterval(() => this.checkSilence(), 1000);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.drop();
  }

  /** Reconnect now (after a sign-in, or the operator pressed "Retry"). */
  restart() {
    this.stop();
    this.failures = 0;
    this.start();
  }

  emit(status, extra = {}) {
    this.status = status;
    this.onStatus({ status, attempt: this.failures, ...extra });
  }

  connect() {
    clearTimeout(this.timer);
    let ws;
    try {
      ws = new WebSocket(this.url, feedProtocols());
    } catch {
      this.closed();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.failures = 0;
      this.lastMessage = Date.now();
      this.emit('connected');
      this.onOpen();
    };
    ws.onmessage = (e) => {
      this.lastMessage = Date.now();
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg && typeof msg.type === 'string') this.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.closed();
    };
  }

  // Detaches the socket so its late events are ignored.
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  closed() {
    this.drop();
    if (this.stopped) return;
    this.failures += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.failures - 1));
    const delay = Math.round(base * (1 + Math.random() * 0.25));
    this.emit(this.failures >= LOST_AFTER_FAILURES ? 'lost' : 'reconnecting', { retryAt: Date.now() + delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  checkSilence() {
    if (this.ws && this.status === 'connected' && Date.now() - this.lastMessage > SILENCE_MS) this.closed();
  }
}
