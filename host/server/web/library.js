// The library: templates (upload, hot swap, rollback, delete, add to the scene), live inputs
// and media files, and image/font assets.

import { html, useRef, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, useAction, useApiPicture, useTick, ErrorText, fmt, tid } from './ui.js';

// How often a playing input's thumbnail and stats are fetched again.
const INPUT_THUMB_MS = 3000;

// A file picker behind a button (keyboard reachable), calling onFile for each chosen file.
function FilePick({ label, accept, onFile, disabled, testid, multiple }) {
  const ref = useRef();
  return html`<span class="file-pick">
    <button type="button" disabled=${disabled} onClick=${() => ref.current.click()}>${label}</button>
    <input type="file" ref=${ref} class="visually-hidden" tabindex="-1" accept=${accept} multiple=${multiple}
      data-testid=${testid} aria-label=${label} disabled=${disabled}
      onChange=${(e) => { for (const f of e.target.files) onFile(f); e.target.value = ''; }} />
  </span>`;
}

// --- Templates ---

function TemplateItem({ t, quarantinedLayers, allowed }) {
  const action = useAction();
  const [open, setOpen] = useState(false);
  const askDelete = () => actions.askConfirm({
    title: `Delete template “${t.id}”?`,
    message: 'Every version is removed. A template still used by a layer cannot be deleted.',
    confirmLabel: 'Delete template',
    danger: true,
    onConfirm: () => action.run(() => actions.deleteTemplate(t.id)),
  });
  return html`<li class="card" data-testid=${tid('template', t.id)}>
    <div class="card-head">
      <strong>${t.info.name || t.id}</strong>
      <span class="muted mono">${t.id}</span>
      <span class="badge">version ${t.version}</span>
      ${quarantinedLayers.length
        ? html`<span class="badge warn" data-testid=${tid('template-quarantine', t.id)}>QUARANTINED on ${quarantinedLayers.join(', ')}</span>`
        : null}
    </div>
    <p class="muted">${t.info.description} <span class="mono">(${t.info.version}, API ${t.info.apiVersion}, ${t.info.defaultSize.join('×')})</span></p>
    <div class="row-actions">
      <button type="button" data-testid=${tid('template-add', t.id)} disabled=${!allowed('layer.edit') || action.busy}
        onClick=${() => action.run(() => actions.addTemplateLayer(t))}>Add to scene</button>
      <${FilePick} label="Swap in new version…" accept=".wasm,application/wasm" testid=${tid('template-swap', t.id)}
        disabled=${!allowed('template.swap') || action.busy} onFile=${(f) => action.run(() => actions.swapTemplate(t.id, f))} />
      <button type="button" data-testid=${tid('template-rollback', t.id)} disabled=${!allowed('template.rollback') || action.busy || !t.versions.some((v) => v.version < t.version)}
        onClick=${() => action.run(() => actions.rollbackTemplate(t.id))}>Roll back</button>
      <button type="button" class="danger" data-testid=${tid('template-delete', t.id)} disabled=${!allowed('template.delete') || action.busy}
        onClick=${askDelete}>Delete</button>
      <button type="button" class="small" aria-expanded=${open ? 'true' : 'false'} onClick=${() => setOpen(!open)}>Versions (${t.versions.length})</button>
    </div>
    ${action.busy ? html`<p class="muted" role="status">Working…</p>` : null}
    <${ErrorText} error=${action.error} />
    ${open ? html`<table class="versions">
      <thead><tr><th scope="col">#</th><th scope="col">Own version</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
      <tbody>${t.versions.map((v) => html`<tr key=${v.version} class=${v.version === t.version ? 'current' : ''}>
        <td>${v.version}${v.version === t.version ? ' (current)' : ''}</td><td>${v.info.version}</td>
        <td>${fmt.bytes(v.bytes)}</td><td class="mono" title=${v.hash}>${v.hash.slice(0, 12)}…</td>
      </tr>`)}</tbody>
    </table>` : null}
  </li>`;
}

export function Templates() {
  const templates = useStore((s) => s.templates);
  const health = useStore((s) => s.health);
  const allowed = useCan();
  const upload = useAction();
  const quarantined = (health && health.components && health.components.templates && health.components.templates.quarantined) || {};
  const layersOf = (id) => Object.keys(quarantined).filter((layer) => quarantined[layer] === id);
  return html`<section class="panel" data-testid="templates" aria-labelledby="templates-h">
    <div class="panel-head">
      <h2 id="templates-h">Templates</h2>
      <${FilePick} label="Upload .wasm…" accept=".wasm,application/wasm" testid="template-upload"
        disabled=${!allowed('template.upload') || upload.busy} onFile=${(f) => upload.run(() => actions.uploadTemplate(f))} />
    </div>
    ${upload.busy ? html`<p class="muted" role="status">Uploading and test-rendering…</p>` : null}
    <${ErrorText} error=${upload.error} testid="template-upload-error" />
    <ul class="cards">${templates.map((t) => html`<${TemplateItem} key=${t.id} t=${t} quarantinedLayers=${layersOf(t.id)} allowed=${allowed} />`)}</ul>
    ${templates.length ? null : html`<p class="muted">No templates installed.</p>`}
  </section>`;
}

// --- Inputs and media ---

function inputStats(st) {
  if (!st) return '';
  const parts = [];
  if (st.width) parts.push(`${st.width}×${st.height}`);
  parts.push(`${fmt.num(st.fps, 1)} fps`, `${fmt.num(st.bitrateKbps)} kbit/s`, `${st.framesDecoded} decoded`,
    `${st.framesDropped} dropped`, `${st.reconnects} reconnects`, `${fmt.num(st.latencyMs, 1)} ms`);
  return parts.join(' · ');
}

function InputItem({ input, media, allowed }) {
  const action = useAction();
  const askRemove = () => actions.askConfirm({
    title: `Remove input “${input.name || input.id}”?`,
    message: 'It is disconnected and removed. An input shown by a layer cannot be removed.',
    confirmLabel: 'Remove input',
    danger: true,
    onConfirm: () => action.run(() => actions.deleteInput(input.id)),
  });
  const enabled = input.enabled !== false;
  // A fresh picture every few seconds while it has one coming; the last one otherwise.
  const live = input.state === 'playing';
  // A sound-only file (a jingle, a bed) has no picture to ask for; nor a file not listed yet.
  const file = input.kind === 'file' && media.find((m) => m.id === input.url);
  const soundOnly = file && !file.videoCodec;
  const hasPicture = (input.kind !== 'file' || (file && !soundOnly)) && (live || input.state === 'stalled' || input.state === 'ended');
  const thumb = useApiPicture(hasPicture ? `/api/inputs/${encodeURIComponent(input.id)}/thumbnail` : null,
    live ? INPUT_THUMB_MS : 0, input.state);
  return html`<li class="card" data-testid=${tid('input', input.id)}>
    <div class="card-head">
      <strong>${input.name || input.id}</strong>
      <span class="muted mono">${input.id}</span>
      <span class="badge">${input.kind}</span>
      <span class=${`badge input-state state-${input.state}`} data-testid=${tid('input-state', input.id)}>${input.state}</span>
    </div>
    <div class="thumb input-thumb">
      ${thumb ? html`<img src=${thumb} alt=${`latest picture of ${input.name || input.id}`} data-testid=${tid('input-thumb', input.id)} />`
        : html`<span class="muted">${soundOnly ? 'sound only' : hasPicture ? '…' : 'no picture'}</span>`}
    </div>
    ${input.url ? html`<p class="mono muted wrap">${input.url}</p>` : null}
    <p class="muted">${inputStats(input.stats)}</p>
    ${input.stats && input.stats.lastError ? html`<p class="error-text">${input.stats.lastError}</p>` : null}
    <div class="row-actions">
      <label class="inline"><input type="checkbox" data-testid=${tid('input-enabled', input.id)} checked=${enabled}
        disabled=${!allowed('input.toggle') || action.busy}
        onChange=${(e) => action.run(() => actions.patchInput(input.id, { enabled: e.target.checked }))} /> Enabled</label>
      <button type="button" data-testid=${tid('input-layer', input.id)} disabled=${!allowed('layer.edit') || action.busy}
        onClick=${() => action.run(() => actions.inputToLayer(input))}>Put on new layer</button>
      <button type="button" class="danger" data-testid=${tid('input-remove', input.id)} disabled=${!allowed('input.delete') || action.busy}
        onClick=${askRemove}>Remove</button>
    </div>
    <${ErrorText} error=${action.error} />
  </li>`;
}

function Secret() {
  const secret = useStore((s) => s.secret);
  const [copied, setCopied] = useState(false);
  if (!secret) return null;
  const url = secret.publishUrl;
  const copy = async () => {
    try { await navigator.clipboard.writeText(url); setCopied(true); } catch { setCopied(false); }
  };
  return html`<div class="secret" data-testid="input-secret" role="region" aria-label="Publisher push URL">
    <p><strong>Input ${secret.inputId}: push URL and stream key.</strong> Shown once — the server masks the key from now on.</p>
    <p><span class="muted">Push to</span> <code class="wrap" data-testid="push-url">${url}</code></p>
    <p><span class="muted">Stream key</span> <code data-testid="stream-key">${secret.streamKey}</code></p>
    <div class="row-actions">
      <button type="button" onClick=${copy}>${copied ? 'Copied' : 'Copy URL'}</button>
      <button type="button" onClick=${() => { actions.clearSecret(); }}>I have saved it</button>
    </div>
  </div>`;
}

function AddInput({ media, allowed }) {
  const [kind, setKind] = useState('rtsp');
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [transport, setTransport] = useState('tcp');
  const [file, setFile] = useState('');
  const [loop, setLoop] = useState(true);
  const action = useAction();
  const disabled = !allowed('input.create');
  const submit = (e) => {
    e.preventDefault();
    const body = { kind, name: name.trim() || undefined };
    if (kind === 'rtsp') Object.assign(body, { url: url.trim(), transport });
    if (kind === 'file') Object.assign(body, { url: file || (media[0] && media[0].id), loop });
    action.run(async () => { await actions.createInput(body); setName(''); setUrl(''); });
  };
  return html`<form class="add-input" data-testid="input-add" onSubmit=${submit}>
    <fieldset disabled=${disabled || action.busy}>
      <legend>Add an input</legend>
      <div class="field"><label for="input-kind">Kind</label>
        <select id="input-kind" data-testid="input-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}>
          <option value="rtsp">RTSP camera</option><option value="rtmp">RTMP publisher</option><option value="file">Media file</option>
        </select></div>
      <div class="field"><label for="input-name">Name</label>
        <input id="input-name" data-testid="input-name" type="text" maxLength="256" value=${name} onInput=${(e) => setName(e.target.value)} /></div>
      ${kind === 'rtsp' ? html`
        <div class="field"><label for="input-url">URL</label>
          <input id="input-url" data-testid="input-url" type="url" required placeholder="rtsp://user:pass@host:554/path" value=${url}
            onInput=${(e) => setUrl(e.target.value)} /></div>
        <div class="field"><label for="input-transport">Transport</label>
          <select id="input-transport" data-testid="input-transport" value=${transport} onChange=${(e) => setTransport(e.target.value)}>
            <option value="tcp">TCP</option><option value="udp">UDP</option></select></div>` : null}
      ${kind === 'file' ? html`
        <div class="field"><label for="input-media">Media</label>
          <select id="input-media" data-testid="input-media" value=${file || (media[0] && media[0].id) || ''} onChange=${(e) => setFile(e.target.value)}>
            ${media.length ? media.map((m) => html`<option value=${m.id}>${m.name} (${m.id})</option>`) : html`<option value="">Upload a media file first</option>`}
          </select></div>
        <label class="inline"><input type="checkbox" data-testid="input-loop" checked=${loop} onChange=${(e) => setLoop(e.target.checked)} /> Loop</label>` : null}
      ${kind === 'rtmp' ? html`<p class="muted">A stream key is generated; the push URL is shown once after creation.</p>` : null}
      <button type="submit" class="primary" data-testid="input-create" disabled=${kind === 'file' && !media.length}>Create input</button>
    </fieldset>
    <${ErrorText} error=${action.error} testid="input-error" />
  </form>`;
}

function Media({ media, allowed }) {
  const upload = useAction();
  const del = useAction();
  const [progress, setProgress] = useState(0);
  const onFile = (f) => upload.run(async () => {
    setProgress(0);
    await actions.uploadMedia(f, setProgress);
  });
  return html`<div class="media">
    <div class="panel-head">
      <h3>Media files</h3>
      <${FilePick} label="Upload video or sound…" accept="video/*,audio/*,.mp4,.mov,.mkv,.ts,.webm,.wav,.mp3,.aac,.m4a,.flac,.ogg,.opus" testid="media-upload"
        disabled=${!allowed('media.upload') || upload.busy} onFile=${onFile} />
    </div>
    ${upload.busy ? html`<p role="status"><progress max="1" value=${progress}></progress> ${Math.round(progress * 100)} %</p>` : null}
    <${ErrorText} error=${upload.error} testid="media-error" />
    <ul class="plain">
      ${media.map((m) => html`<li key=${m.id} data-testid=${tid('media', m.id)}>
        <span>${m.name}</span> <span class="muted mono">${m.id}</span>
        <span class="muted">${m.videoCodec ? `${m.width}×${m.height} ${m.videoCodec}` : `sound only, ${m.audioCodec}`} · ${fmt.duration(m.durationMs)} · ${fmt.bytes(m.bytes)}</span>
        <button type="button" class="small danger" data-testid=${tid('media-delete', m.id)} disabled=${!allowed('media.delete') || del.busy}
          onClick=${() => del.run(() => actions.deleteMedia(m.id))}>Delete</button>
      </li>`)}
    </ul>
    <${ErrorText} error=${del.error} />
  </div>`;
}

export function Inputs() {
  const inputs = useStore((s) => s.inputs);
  const media = useStore((s) => s.media);
  const allowed = useCan();
  // inputUpdate comes with each change of state; the stats of a playing input move on
  // between them, so they are read again while one plays.
  useTick(inputs.some((i) => i.state === 'playing') ? INPUT_THUMB_MS : 0, actions.refreshInputs);
  return html`<section class="panel" data-testid="inputs" aria-labelledby="inputs-h">
    <div class="panel-head"><h2 id="inputs-h">Inputs</h2></div>
    <${Secret} />
    <ul class="cards">${inputs.map((i) => html`<${InputItem} key=${i.id} input=${i} media=${media} allowed=${allowed} />`)}</ul>
    ${inputs.length ? null : html`<p class="muted">No inputs.</p>`}
    <${AddInput} media=${media} allowed=${allowed} />
    <${Media} media=${media} allowed=${allowed} />
  </section>`;
}

// --- Assets ---

function AssetItem({ asset, allowed }) {
  const action = useAction();
  const thumb = useApiPicture(asset.kind === 'image' ? `/api/assets/${encodeURIComponent(asset.id)}/thumbnail` : null);
  return html`<li class="asset" data-testid=${tid('asset', asset.id)}>
    <div class="thumb">
      ${thumb ? html`<img src=${thumb} alt="" data-testid=${tid('asset-thumb', asset.id)} />`
        : html`<span class="muted">${asset.kind === 'font' ? 'Aa' : 'image'}</span>`}
    </div>
    <div>
      <strong class="wrap">${asset.name}</strong>
      <div class="muted mono">${asset.id}</div>
      <div class="muted">${asset.kind === 'font' ? `font: ${asset.family || '?'}` : `${asset.width}×${asset.height}`} · ${fmt.bytes(asset.bytes)}</div>
      <div class="row-actions">
        ${asset.kind === 'image' ? html`<button type="button" class="small" data-testid=${tid('asset-layer', asset.id)}
          disabled=${!allowed('layer.edit') || action.busy} onClick=${() => action.run(() => actions.assetToLayer(asset))}>Add to scene</button>` : null}
        <button type="button" class="small danger" data-testid=${tid('asset-delete', asset.id)}
          disabled=${!allowed('asset.delete') || action.busy} onClick=${() => action.run(() => actions.deleteAsset(asset.id))}>Delete</button>
      </div>
      <${ErrorText} error=${action.error} testid="asset-error" />
    </div>
  </li>`;
}

export function Assets() {
  const assets = useStore((s) => s.assets);
  const allowed = useCan();
  const upload = useAction();
  const [over, setOver] = useState(false);
  const may = allowed('asset.upload');
  const send = (files) => upload.run(async () => {
    for (const f of files) await actions.uploadAsset(f);
  });
  const onDrop = (e) => {
    e.preventDefault();
    setOver(false);
    if (may && e.dataTransfer && e.dataTransfer.files.length) send([...e.dataTransfer.files]);
  };
  return html`<section class="panel" data-testid="assets" aria-labelledby="assets-h">
    <div class="panel-head"><h2 id="assets-h">Assets</h2></div>
    <div class=${`dropzone${over ? ' over' : ''}`} data-testid="asset-drop"
      onDragOver=${(e) => { e.preventDefault(); setOver(true); }} onDragLeave=${() => setOver(false)} onDrop=${onDrop}>
      <p>Drop PNG, JPEG, WebP, GIF, TTF or OTF files here, or</p>
      <${FilePick} label="Choose files…" accept=".png,.jpg,.jpeg,.webp,.gif,.ttf,.otf,image/*,font/ttf,font/otf" multiple
        testid="asset-upload" disabled=${!may || upload.busy} onFile=${(f) => send([f])} />
    </div>
    ${upload.busy ? html`<p class="muted" role="status">Uploading…</p>` : null}
    <${ErrorText} error=${upload.error} testid="asset-upload-error" />
    <ul class="asset-list">${assets.map((a) => html`<${AssetItem} key=${a.id} asset=${a} allowed=${allowed} />`)}</ul>
    ${assets.length ? null : html`<p class="muted">No assets.</p>`}
  </section>`;
}
