// The page of `stream-manager template preview FILE.wasm`, for template authors: the
// template's picture at a frame (a PNG the server draws through the stream's compositor),
// its params form (generated from its JSON Schema by schema-form.js, as in the console),
// frame controls (step, slider, play at the preview's fps) and what the frame cost the host.
// With `--watch` the server reloads the file when it changes; this page long-polls
// /api/template and draws the new version at the same frame and params.
//
// API (same origin, no token): GET /api/template[?after=REVISION], POST /api/render
// {params, frame} → image/png with X-… cost headers (see docs/templates.md).
//
// data-testid hooks: template-name, template-version (data-version), load-error,
//   preview-image (data-frame, data-version), render-error, earlier-fault, frame, frame-slider,
//   first-frame, prev-frame, next-frame, play (aria-pressed), length, time, cost, cost-guest,
//   cost-raster, cost-estimate, cost-budget, cost-server, params-form, template-update,
//   template-defaults, form-error, field-error, form-status

import { html, render, useEffect, useRef, useState } from './vendor/preact-htm.js';
import { SchemaFields, initialValue, validate, errorsFromMessage } from './schema-form.js';
import { NumberInput, fmt } from './ui.js';

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(r) {
  try {
    const body = await r.json();
    return new HttpError(r.status, body.error.code, body.error.message);
  } catch {
    return new HttpError(r.status, 'http', `HTTP ${r.status}`);
  }
}

async function getTemplate(after) {
  const r = await fetch(after == null ? '/api/template' : `/api/template?after=${after}`, { cache: 'no-store' });
  if (!r.ok) throw await errorOf(r);
  return r.json();
}

async function renderFrame(params, frame) {
  const r = await fetch('/api/render', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ params, frame }),
  });
  if (!r.ok) throw await errorOf(r);
  const num = (k) => Number(r.headers.get(k));
  return {
    blob: await r.blob(),
    frame: num('x-preview-frame'),
    version: num('x-preview-version'),
    cost: {
      guest: num('x-guest-ms'),
      raster: num('x-raster-ms'),
      estimate: num('x-raster-estimate-ms'),
      budget: num('x-budget-ms'),
      drew: r.headers.get('x-drew') === 'true',
      drawn: num('x-frames-drawn'),
      server: num('x-render-ms'),
      earlierFault: r.headers.get('x-earlier-fault'),
    },
  };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function Metric({ label, value, testid, warn }) {
  return html`<div class=${warn ? 'metric warn' : 'metric'}><dt>${label}</dt><dd data-testid=${testid}>${value}</dd></div>`;
}

function Cost({ cost }) {
  if (!cost) return null;
  const over = cost.guest + cost.raster > cost.budget;
  return html`<dl class="metrics" data-testid="cost" aria-label="What the frame cost the host">
    <${Metric} label="Guest calls" testid="cost-guest" value=${`${fmt.num(cost.guest, 3)} ms`} warn=${over} />
    <${Metric} label="Raster" testid="cost-raster" value=${cost.drew ? `${fmt.num(cost.raster, 3)} ms` : 'unchanged'} warn=${over} />
    <${Metric} label="Raster estimate" testid="cost-estimate" value=${cost.drew ? `${fmt.num(cost.estimate, 3)} ms` : '–'} />
    <${Metric} label="Budget (alone on air)" testid="cost-budget" value=${`${fmt.num(cost.budget, 1)} ms`} />
    <${Metric} label="Server time" testid="cost-server"
      value=${`${fmt.num(cost.server, 1)} ms${cost.drawn > 1 ? ` (${cost.drawn} frames)` : ''}`} />
  </dl>`;
}

function App() {
  const [meta, setMeta] = useState(null); // GET /api/template
  const [offline, setOffline] = useState(false);
  const [loadedAt, setLoadedAt] = useState(null);
  const [draft, setDraft] = useState({}); // the form
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState('');
  const [status, setStatus] = useState('');
  const [frame, setFrame] = useState(0);
  const [lengthS, setLengthS] = useState(10);
  const [playing, setPlaying] = useState(false);
  const [picture, setPicture] = useState(null); // {url, frame, version}
  const [cost, setCost] = useState(null);
  const [renderError, setRenderError] = useState('');

  // What async loops read: the newest values, not a render's copy.
  const draftRef = useRef(draft);
  const applied = useRef(null); // params of the picture (sent by Update)
  const frameRef = useRef(0);
  const shownVersion = useRef(0);
  const chain = useRef(Promise.resolve());
  const seq = useRef(0);
  const urlRef = useRef(null);
  const schemaRef = useRef({});

  const fps = meta ? meta.fps : 30;
  const maxFrame = meta ? Math.min(meta.maxFrames - 1, Math.max(1, Math.round(lengthS * fps)) - 1) : 0;
  const info = meta && meta.info;
  const schema = (info && info.paramsSchema) || {};
  schemaRef.current = schema;

  const editDraft = (v) => { draftRef.current = v; setDraft(v); setStatus(''); };
  const goTo = (n) => { frameRef.current = n; setFrame(n); };

  // One request at a time, in order; one overtaken by a newer one before it started is
  // skipped (answers null), so a dragged slider does not queue every position.
  const ask = (n, params) => {
    const mine = ++seq.current;
    const job = chain.current.then(() => (mine === seq.current ? renderFrame(params, n) : null));
    chain.current = job.catch(() => null);
    return job.then((r) => {
      if (!r) return null;
      if (urlRef.current) URL.revokeObjectURL(urlRef.current);
      urlRef.current = URL.createObjectURL(r.blob);
      setPicture({ url: urlRef.current, frame: r.frame, version: r.version });
      setCost(r.cost);
      setRenderError('');
      return r;
    }, (e) => {
      if (mine === seq.current) {
        if (e.code === 'invalid_params') {
          setFormError(e.message);
          setErrors(errorsFromMessage(e.message, Object.keys(schemaRef.current.properties || {})));
        } else {
          setRenderError(e.message);
        }
      }
      throw e;
    });
  };
  const show = (n) => ask(n, applied.current).catch(() => null);

  // The template and its reloads: a long poll of /api/template.
  useEffect(() => {
    let stop = false;
    (async () => {
      let revision = null;
      let failures = 0;
      while (!stop) {
        try {
          const m = await getTemplate(revision);
          failures = 0;
          setOffline(false);
          if (m.revision !== revision) {
            revision = m.revision;
            setMeta(m);
            if (m.info && m.version !== shownVersion.current) {
              if (!shownVersion.current) {
                const start = initialValue(m.info.defaultParams, {});
                applied.current = start;
                draftRef.current = start;
                setDraft(start);
              }
              shownVersion.current = m.version;
              setLoadedAt(new Date());
              show(frameRef.current);
            }
          }
        } catch {
          failures += 1;
          setOffline(true);
          await sleep(Math.min(5000, 300 * failures));
        }
      }
    })();
    return () => { stop = true; };
  }, []);

  // Playing: the next frame every 1/fps s, or as fast as the server draws them.
  useEffect(() => {
    if (!playing) return undefined;
    let stop = false;
    (async () => {
      while (!stop) {
        const started = performance.now();
        const next = frameRef.current >= maxFrame ? 0 : frameRef.current + 1;
        goTo(next);
        try {
          await ask(next, applied.current);
        } catch {
          setPlaying(false);
          return;
        }
        const wait = 1000 / fps - (performance.now() - started);
        if (wait > 0) await sleep(wait);
      }
    })();
    return () => { stop = true; };
  }, [playing, maxFrame, fps]);

  const seek = (n) => {
    const to = Math.max(0, Math.min(maxFrame, Math.round(Number.isFinite(n) ? n : 0)));
    goTo(to);
    show(to);
  };

  const submit = async (e) => {
    e.preventDefault();
    const sent = draftRef.current;
    const local = validate(schema, sent);
    setErrors(local);
    setStatus('');
    if (Object.keys(local).length) {
      setFormError('Fix the marked fields first.');
      return;
    }
    setFormError('');
    try {
      const r = await ask(frameRef.current, sent);
      applied.current = sent;
      if (r) setStatus(`Updated; frame ${r.frame} drawn with these params.`);
    } catch { /* shown by ask */ }
  };

  const defaults = () => {
    if (!info) return;
    editDraft(initialValue(info.defaultParams, {}));
    setErrors({});
    setFormError('');
  };

  if (!meta) {
    return html`<p class="boot">${offline ? 'The preview server does not answer.' : 'Loading the template…'}</p>`;
  }
  const [w, h] = info ? info.defaultSize : [320, 180];
  return html`<header class="topbar">
      <h1 data-testid="template-name">${info ? `${info.name} ${info.version}` : 'No template loaded'}</h1>
      <span class="badge" data-testid="template-version" data-version=${String(meta.version)}>version ${meta.version}</span>
      <span class="muted mono wrap">${meta.file}</span>
      <span class="topbar-end muted">
        ${meta.watch ? 'reloads when the file changes' : 'not watching the file'}
        ${loadedAt ? ` · loaded ${fmt.time(loadedAt)}` : ''}
        ${offline ? html` · <span class="stale">server not answering</span>` : ''}
      </span>
    </header>
    ${meta.error ? html`<p class="notice warn preview-notice" role="alert" data-testid="load-error">
      The file did not load${info ? `; still showing version ${meta.version}` : ''}: ${meta.error}</p>` : null}
    <main class="preview-layout">
      <section class="panel" aria-labelledby="picture-h">
        <div class="panel-head">
          <h2 id="picture-h">Picture</h2>
          <span class="muted">${w}×${h} · ${fps} fps</span>
        </div>
        <div class="preview-canvas">
          ${picture
            ? html`<img data-testid="preview-image" src=${picture.url} width=${w} height=${h}
                data-frame=${String(picture.frame)} data-version=${String(picture.version)}
                alt=${`${info ? info.name : 'template'} at frame ${picture.frame}`} />`
            : html`<p class="stage-empty">${info ? 'Drawing…' : 'Waiting for the file to load.'}</p>`}
        </div>
        ${renderError ? html`<p class="error-text" role="alert" data-testid="render-error">${renderError}</p>` : null}
        ${cost && cost.earlierFault ? html`<p class="notice warn" data-testid="earlier-fault">An earlier frame faulted: ${cost.earlierFault}</p>` : null}
        <div class="row-actions frame-controls">
          <button type="button" data-testid="first-frame" disabled=${!info} onClick=${() => seek(0)}>Start</button>
          <button type="button" data-testid="prev-frame" aria-label="Previous frame" disabled=${!info || frame === 0} onClick=${() => seek(frame - 1)}>◀</button>
          <button type="button" class="primary" data-testid="play" aria-pressed=${playing ? 'true' : 'false'} disabled=${!info}
            onClick=${() => setPlaying(!playing)}>${playing ? 'Pause' : 'Play'}</button>
          <button type="button" data-testid="next-frame" aria-label="Next frame" disabled=${!info || frame >= maxFrame} onClick=${() => seek(frame + 1)}>▶</button>
          <label class="inline" for="frame-number">Frame</label>
          <${NumberInput} id="frame-number" class="narrow" data-testid="frame" min="0" max=${maxFrame} step="1" value=${frame}
            disabled=${!info} onValue=${(v) => { if (Number.isFinite(v)) seek(v); }} />
          <span class="muted" data-testid="time">${fmt.num(frame / fps, 3)} s</span>
        </div>
        <div class="row-actions">
          <label for="frame-slider" class="visually-hidden">Frame</label>
          <input id="frame-slider" type="range" class="frame-slider" data-testid="frame-slider" min="0" max=${maxFrame} step="1"
            value=${frame} disabled=${!info} onInput=${(e) => seek(Number(e.target.value))} />
          <label class="inline" for="length">Length (s)</label>
          <${NumberInput} id="length" class="narrow" data-testid="length" min="1" max=${Math.floor(meta.maxFrames / fps)} step="1" value=${lengthS}
            onValue=${(v) => { if (Number.isFinite(v) && v >= 1) setLengthS(Math.min(v, Math.floor(meta.maxFrames / fps))); }} />
        </div>
        <${Cost} cost=${cost} />
        <p class="help">Frame N is what a layer that appeared at frame 0 with these params shows at frame N.
          A step back, new params or a new version draw again from frame 0 (server time counts those frames).</p>
      </section>
      <section class="panel" aria-labelledby="params-h">
        <div class="panel-head"><h2 id="params-h">Params</h2></div>
        ${info ? html`<form class="template-form" data-testid="params-form" novalidate onSubmit=${submit}>
          <p class="muted">${info.description}</p>
          <${SchemaFields} schema=${schema} value=${draft} getValue=${() => draftRef.current} errors=${errors}
            idPrefix="p-" disabled=${false} onChange=${editDraft} />
          ${formError ? html`<p class="error-text" role="alert" data-testid="form-error">${formError}</p>` : null}
          ${status ? html`<p class="ok-text" role="status" data-testid="form-status">${status}</p>` : null}
          <div class="row-actions">
            <button type="submit" class="primary" data-testid="template-update">Update</button>
            <button type="button" data-testid="template-defaults" onClick=${defaults}>Defaults</button>
          </div>
        </form>` : html`<p class="muted">The form appears once the file loads.</p>`}
      </section>
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
