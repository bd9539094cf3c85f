// The show: header (connection, stream state and control), the program monitor with its
// metrics and drag-to-move stage, the rundown of named scenes, and the log.

import { html, useRef, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, useAction, useTick, NumberInput, fmt, tid, ErrorText } from './ui.js';

// --- Header ---

const CONN_TEXT = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', lost: 'Connection lost', signin: 'Sign-in needed' };

// Only the state words are a live region; the countdown next to them is not announced.
function Connection() {
  const conn = useStore((s) => s.conn);
  const down = conn.status === 'reconnecting' || conn.status === 'lost';
  useTick(down ? 1000 : 0);
  const wait = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
  return html`<div class="conn" data-testid="connection" data-state=${conn.status}>
    <span class="dot" aria-hidden="true"></span>
    <span role="status">${CONN_TEXT[conn.status]}</span>
    ${down ? html`<span class="muted">${wait ? `retry in ${wait} s` : 'retrying'}</span>
      <button type="button" class="small" onClick=${actions.retryNow}>Retry now</button>` : null}
    ${conn.status === 'signin' ? html`<button type="button" class="small" onClick=${actions.askSignIn}>Sign in</button>` : null}
  </div>`;
}

function streamMode(stream) {
  if (!stream) return 'unknown';
  if (!stream.isLive) return 'stopped';
  return stream.isPaused ? 'paused' : 'live';
}

const MODE_TEXT = { live: 'LIVE', paused: 'PAUSED', stopped: 'STOPPED', unknown: '…' };

function Uptime({ since }) {
  useTick(1000);
  return html`<span class="muted mono" aria-label="time on air">${fmt.duration(Date.now() - since)}</span>`;
}

function StreamControls() {
  const stream = useStore((s) => s.stream);
  const allowed = useCan();
  const action = useAction();
  const mode = streamMode(stream);
  const ok = allowed('stream.control') && !action.busy && mode !== 'unknown';
  const askStop = () => actions.askConfirm({
    title: 'Stop the stream?',
    message: 'Stopping flushes the encoder and closes every output: viewers lose the stream. Pause instead keeps the outputs connected.',
    confirmLabel: 'Stop stream',
    danger: true,
    ids: { dialog: 'stop-dialog', ok: 'confirm-stop', cancel: 'cancel-stop' },
    onConfirm: () => action.run(actions.stop),
  });
  return html`<div class="stream-controls">
    <div class=${`state state-${mode}`} data-testid="stream-state" data-state=${mode}>
      <strong role="status">${MODE_TEXT[mode]}</strong>
      ${stream && stream.isLive && stream.startTime ? html`<${Uptime} since=${stream.startTime} />` : null}
    </div>
    ${mode === 'stopped' ? html`<button type="button" class="primary" data-testid="go-live" disabled=${!ok}
        onClick=${() => action.run(actions.goLive)}>Go live</button>` : null}
    ${mode === 'live' ? html`<button type="button" data-testid="pause" disabled=${!ok}
        onClick=${() => action.run(actions.pause)}>Pause</button>` : null}
    ${mode === 'paused' ? html`<button type="button" data-testid="resume" disabled=${!ok}
        onClick=${() => action.run(actions.resume)}>Resume</button>` : null}
    <button type="button" class="danger" data-testid="stop" disabled=${!ok || mode === 'stopped'}
      onClick=${askStop}>Stop</button>
    <${ErrorText} error=${action.error} testid="stream-error" />
  </div>`;
}

function HealthBadge() {
  const health = useStore((s) => s.health);
  const status = health ? health.status : 'unknown';
  return html`<span class=${`badge health-${status}`} data-testid="health" title="GET /api/health">Health: ${status}</span>`;
}

export function Header() {
  const shortcuts = useStore((s) => s.shortcuts);
  const auth = useStore((s) => s.auth);
  return html`<header class="topbar">
    <h1>stream-manager</h1>
    <${Connection} />
    <${StreamControls} />
    <div class="topbar-end">
      <${HealthBadge} />
      <label class="inline toggle">
        <input type="checkbox" data-testid="shortcuts-toggle" checked=${shortcuts}
          onChange=${(e) => actions.setShortcuts(e.target.checked)} /> Shortcuts
      </label>
      <button type="button" data-testid="shortcuts-help" aria-label="Keyboard shortcuts (?)"
        onClick=${() => actions.showHelp(true)}>?</button>
      ${auth.role ? html`<span class="muted" data-testid="role" data-role=${auth.role}
        title=${auth.role === 'viewer' ? 'This token may only look.' : `This token may do what an ${auth.role} may.`}>${auth.name} · ${auth.role}</span>` : null}
      ${auth.signedIn ? html`<button type="button" data-testid="signout" onClick=${actions.signOut}>Sign out</button>` : null}
    </div>
  </header>`;
}

// --- Program monitor ---

// Age of the picture: from the server's timestamp when the two clocks roughly agree, else
// since it arrived here (a skewed browser clock would show nonsense).
function ageMs(preview, now) {
  const byServer = now - preview.timestamp;
  return byServer >= 0 && byServer < 60000 ? byServer : now - preview.receivedAt;
}

function PreviewAge() {
  const preview = useStore((s) => s.preview);
  useTick(100);
  const now = Date.now();
  if (!preview) return html`<span data-testid="preview-age" class="muted">no frame</span>`;
  const age = Math.max(0, Math.round(ageMs(preview, now)));
  return html`<span data-testid="preview-age" class=${age > 2000 ? 'stale' : ''}>
    ${age} ms${age > 2000 ? ' (stale)' : ''}</span>`;
}

const DRAG_THRESHOLD_PX = 3;

/**
 * The preview picture with the layers' boxes over it. Dragging a layer moves it: preview px
 * are scaled to canvas px (the canvas is stretched onto the frame, so x and y scale apart)
 * and the new position is sent on drop. Rotation is ignored by the hit test.
 */
function Stage() {
  const preview = useStore((s) => s.preview);
  const scene = useStore((s) => s.scene);
  const selectedLayer = useStore((s) => s.selectedLayer);
  const stream = useStore((s) => s.stream);
  const allowed = useCan();
  const ref = useRef();
  // The drag lives in a ref (pointer events may outrun renders); `setDrag` only redraws.
  const dragRef = useRef(null); // {id, start, startPx, origin, pos, moved}
  const [drag, setDrag] = useState(null);
  const canvas = scene ? scene.canvas : { width: 1920, height: 1080 };
  const layers = scene ? scene.layers : [];
  const live = !!(stream && stream.isLive);
  const showFrame = preview && live;

  const toCanvas = (e) => {
    const r = ref.current.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * canvas.width, y: ((e.clientY - r.top) / r.height) * canvas.height };
  };

  // Topmost visible layer under the point; full-canvas layers (backgrounds) only as a last resort.
  const hit = (p) => {
    const under = layers
      .map((l, i) => ({ l, i }))
      .filter(({ l }) => l.visible !== false && p.x >= l.position.x && p.x <= l.position.x + l.position.width
        && p.y >= l.position.y && p.y <= l.position.y + l.position.height)
      .sort((a, b) => (b.l.position.zIndex || 0) - (a.l.position.zIndex || 0) || b.i - a.i)
      .map(({ l }) => l);
    const full = (l) => l.position.width >= canvas.width && l.position.height >= canvas.height;
    return under.find((l) => !full(l)) || under[0];
  };

  const update = (d) => { dragRef.current = d; setDrag(d); };
  const onPointerDown = (e) => {
    if (e.button !== 0) return;
    const p = toCanvas(e);
    const layer = hit(p);
    if (!layer) return;
    actions.selectLayer(layer.id);
    if (!allowed('layer.edit')) return;
    if (ref.current.setPointerCapture && e.pointerId !== undefined) ref.current.setPointerCapture(e.pointerId);
    update({ id: layer.id, start: p, startPx: { x: e.clientX, y: e.clientY }, origin: layer.position, pos: layer.position, moved: false });
  };
  const onPointerMove = (e) => {
    const d = dragRef.current;
    if (!d) return;
    const p = toCanvas(e);
    const moved = d.moved || Math.hypot(e.clientX - d.startPx.x, e.clientY - d.startPx.y) > DRAG_THRESHOLD_PX;
    const pos = { ...d.origin, x: Math.round(d.origin.x + p.x - d.start.x), y: Math.round(d.origin.y + p.y - d.start.y) };
    update({ ...d, pos, moved });
  };
  const onPointerUp = () => {
    const d = dragRef.current;
    if (!d) return;
    update(null);
    if (d.moved) actions.putPosition(d.id, d.pos).catch(() => {});
  };

  const pct = (v, of) => `${(v / of) * 100}%`;
  const box = (l) => {
    const p = drag && drag.id === l.id ? drag.pos : l.position;
    return html`<div key=${l.id} class=${`layer-box${l.id === selectedLayer ? ' selected' : ''}`} aria-hidden="true"
      style=${{ left: pct(p.x, canvas.width), top: pct(p.y, canvas.height), width: pct(p.width, canvas.width), height: pct(p.height, canvas.height) }}>
      ${l.id === selectedLayer ? html`<span class="layer-box-label">${l.name || l.id} · ${Math.round(p.x)}, ${Math.round(p.y)}</span>` : null}
    </div>`;
  };

  return html`<div class="stage" ref=${ref} data-testid="stage" style=${{ aspectRatio: `${canvas.width} / ${canvas.height}` }}
      onPointerDown=${onPointerDown} onPointerMove=${onPointerMove} onPointerUp=${onPointerUp} onPointerCancel=${() => update(null)}>
    <img data-testid="preview" alt="Program preview" hidden=${!showFrame} src=${showFrame ? preview.src : undefined} draggable="false" />
    ${showFrame ? null : html`<p class="stage-empty">${live ? 'Waiting for preview frames…' : 'Stream stopped: no preview. Layer boxes below are the active scene.'}</p>`}
    ${layers.filter((l) => l.visible !== false).map(box)}
  </div>`;
}

function Metric({ id, label, value, warn }) {
  return html`<div class=${`metric${warn ? ' warn' : ''}`} data-testid=${`metric-${id}`}>
    <dt>${label}</dt><dd>${value}${warn ? html` <span class="visually-hidden">(warning)</span>` : null}</dd>
  </div>`;
}

function Metrics() {
  const m = useStore((s) => s.metrics);
  const stream = useStore((s) => s.stream);
  const config = useStore((s) => s.config);
  const target = (stream && stream.targetFPS) || (config && config.targetFPS) || 0;
  const fps = m ? m.fps : stream ? stream.fps : undefined;
  const live = stream && stream.isLive && !stream.isPaused;
  return html`<dl class="metrics" data-testid="metrics">
    <${Metric} id="fps" label="FPS" value=${`${fmt.num(fps, 1)} / ${target || '–'}`} warn=${live && target && fps < target * 0.95} />
    <${Metric} id="dropped" label="Dropped" value=${fmt.num(m ? m.droppedFrames : stream && stream.droppedFrames)} warn=${m && m.droppedFrames > 0} />
    <${Metric} id="bitrate" label="Bitrate" value=${fmt.bits(m && m.bitrate)} />
    <${Metric} id="latency" label="Encoder latency" value=${m ? `${fmt.num(m.encoderLatency, 1)} ms` : '–'} />
    <${Metric} id="render" label="Render (avg)" value=${stream ? `${fmt.num(stream.averageRenderTime, 2)} ms` : '–'} />
    <${Metric} id="buffer" label="Buffer" value=${m ? `${fmt.num(m.bufferHealth * 100)} %` : '–'} warn=${m && m.bufferHealth < 0.5} />
    <${Metric} id="cpu" label="CPU" value=${m ? `${fmt.num(m.cpuUsage, 1)} %` : '–'} />
    <${Metric} id="memory" label="Memory" value=${fmt.bytes(m && m.memoryUsage)} />
  </dl>`;
}

export function Monitor() {
  const config = useStore((s) => s.config);
  const allowed = useCan();
  const action = useAction();
  const previewOff = config && config.preview && !config.preview.enabled;
  return html`<section class="panel monitor" data-testid="monitor" aria-labelledby="monitor-h">
    <div class="panel-head">
      <h2 id="monitor-h">Preview</h2>
      <${PreviewAge} />
    </div>
    ${previewOff ? html`<p class="notice">Preview frames are off in the stream config (preview.enabled).
      ${allowed('stream.config') ? html` <button type="button" data-testid="preview-enable" disabled=${action.busy}
        onClick=${() => action.run(actions.enablePreview)}>Turn preview on</button>` : null}</p>` : null}
    <${Stage} />
    <${ErrorText} error=${action.error} />
    <${Metrics} />
  </section>`;
}

// --- Rundown ---

function Tally({ onAir, next }) {
  return html`<span class="tally">
    ${onAir ? html`<span class="badge onair">ON AIR</span>` : null}
    ${next ? html`<span class="badge next">NEXT</span>` : null}
  </span>`;
}

function NewScene({ disabled }) {
  const [name, setName] = useState('');
  const [copy, setCopy] = useState(true);
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => { await actions.createScene(name.trim(), copy); setName(''); });
  };
  return html`<form class="row-form" onSubmit=${submit}>
    <label for="new-scene-name">New scene</label>
    <input id="new-scene-name" type="text" placeholder="name" maxLength="256" value=${name} disabled=${disabled}
      onInput=${(e) => setName(e.target.value)} />
    <label class="inline"><input type="checkbox" checked=${copy} disabled=${disabled} onChange=${(e) => setCopy(e.target.checked)} /> copy of on-air</label>
    <button type="submit" data-testid="scene-new" disabled=${disabled || action.busy}>Create</button>
    <${ErrorText} error=${action.error} />
  </form>`;
}

export function Rundown() {
  const scenes = useStore((s) => s.scenes);
  const nextScene = useStore((s) => s.nextScene);
  const transition = useStore((s) => s.transition);
  const locked = useStore((s) => s.locked);
  const allowed = useCan();
  const take = useAction();
  const del = useAction();
  const mayTake = allowed('scene.take') && !locked;
  const mayEdit = allowed('scene.edit') && !locked;
  const next = scenes.find((x) => x.id === nextScene);
  const activeId = `scene-opt-${nextScene}`;

  const askDelete = () => next && actions.askConfirm({
    title: `Delete scene “${next.name}”?`,
    message: 'The scene and its layers are removed. The scene on air cannot be deleted.',
    confirmLabel: 'Delete',
    danger: true,
    onConfirm: () => del.run(() => actions.deleteScene(next.id)),
  });

  return html`<section class="panel rundown" data-testid="rundown" aria-labelledby="rundown-h">
    <div class="panel-head">
      <h2 id="rundown-h">Rundown</h2>
      <label class="inline toggle">
        <input type="checkbox" data-testid="rundown-lock" checked=${locked}
          onChange=${(e) => actions.setLocked(e.target.checked)} /> Lock
      </label>
    </div>
    ${locked ? html`<p class="notice">Locked: take and edit are off.</p>` : null}
    <ul class="scene-list" role="listbox" tabindex="0" aria-label="Scenes (↑/↓ move NEXT, Space cut, Enter take)"
      aria-activedescendant=${next ? activeId : undefined}>
      ${scenes.map((sc) => html`<li key=${sc.id} id=${`scene-opt-${sc.id}`} role="option"
          aria-selected=${sc.id === nextScene ? 'true' : 'false'}
          class=${`scene${sc.active ? ' is-onair' : ''}${sc.id === nextScene ? ' is-next' : ''}`}
          data-testid=${tid('scene', sc.id)} data-tally=${[sc.active && 'onair', sc.id === nextScene && 'next'].filter(Boolean).join(' ')}
          onClick=${() => actions.selectNext(sc.id)}>
        <span class="scene-name">${sc.name || sc.id}</span>
        <span class="muted">${sc.layers} layer${sc.layers === 1 ? '' : 's'}</span>
        <${Tally} onAir=${sc.active} next=${sc.id === nextScene} />
      </li>`)}
    </ul>
    <div class="take-bar">
      <label for="transition-kind">Transition</label>
      <select id="transition-kind" data-testid="transition-kind" value=${transition.kind} disabled=${!mayTake}
        onChange=${(e) => actions.setTransition({ kind: e.target.value })}>
        <option value="cut">Cut</option><option value="fade">Fade</option><option value="slide">Slide</option>
      </select>
      <${NumberInput} id="transition-ms" data-testid="transition-duration" class="narrow" min="0" max="10000" step="50"
        aria-label="Transition duration (ms)" value=${transition.durationMs} disabled=${!mayTake || transition.kind === 'cut'}
        onValue=${(v) => actions.setTransition({ durationMs: Number.isFinite(v) ? Math.max(0, Math.min(10000, Math.round(v))) : 0 })} />
      <span class="muted" aria-hidden="true">ms</span>
    </div>
    <div class="take-bar">
      <button type="button" data-testid="cut" disabled=${!mayTake || !next || take.busy}
        onClick=${() => take.run(() => actions.take({ cut: true }))}>Cut</button>
      <button type="button" class="primary" data-testid="take" disabled=${!mayTake || !next || take.busy}
        onClick=${() => take.run(() => actions.take())}>Take</button>
    </div>
    <${ErrorText} error=${take.error} testid="take-error" />
    <div class="row-actions">
      <button type="button" data-testid="scene-delete" disabled=${!mayEdit || !next || next.active || del.busy} onClick=${askDelete}>Delete NEXT scene</button>
    </div>
    <${ErrorText} error=${del.error} />
    <${NewScene} disabled=${!mayEdit} />
  </section>`;
}

// --- Log ---

export function Log() {
  const entries = useStore((s) => s.log);
  return html`<section class="panel log" aria-labelledby="log-h">
    <div class="panel-head">
      <h2 id="log-h">Log</h2>
      <button type="button" class="small" data-testid="log-clear" onClick=${() => actions.clearLog()}>Clear</button>
    </div>
    <ol class="log-list" data-testid="log" aria-live="polite" aria-relevant="additions">
      ${entries.map((e) => html`<li key=${e.id} class=${`log-${e.level}`} data-code=${e.code}>
        <time class="mono">${fmt.time(e.time)}</time>
        <span class="log-level">${e.level}</span>
        ${e.component ? html`<span class="mono muted">${e.component}</span>` : null}
        ${e.code ? html`<span class="mono muted">${e.code}</span>` : null}
        <span class="log-msg">${e.message}</span>
      </li>`)}
    </ol>
  </section>`;
}
