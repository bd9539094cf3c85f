// stream-manager admin console: the root of the page and its dialogs.
//
// Modules: api.js (REST + WebSocket client), store.js (state), actions.js (what the console
// does), access.js (can(session, action)), schema-form.js (params forms from JSON Schema),
// shortcuts.js (keyboard), ui.js (shared pieces), show.js (header, preview, rundown, log),
// layers.js (layers and inspector), library.js (templates, inputs, media, assets),
// destinations.js (where the program is pushed), recordings.js (record, the recordings),
// audio.js (the mixer: faders, mutes, limiter, meters).
//
// data-testid hooks for browser tests (<id> is a scene, layer, template, input, media or
// asset id):
//   header     connection (data-state: connecting|connected|reconnecting|lost|signin),
//              stream-state (data-state: live|paused|stopped), go-live, pause, resume, stop,
//              stream-error, health, shortcuts-toggle, shortcuts-help, role (data-role: viewer|
//              operator|admin, from GET /api/me), signout
//   dialogs    stop-dialog, confirm-stop, cancel-stop; confirm-dialog, confirm-ok,
//              confirm-cancel; shortcut-map; signin, token, signin-submit, signin-error
//   monitor    monitor, preview (the <img>), preview-age, preview-enable, stage, metrics,
//              metric-fps, metric-dropped, metric-bitrate, metric-latency, metric-render,
//              metric-buffer, metric-cpu, metric-memory
//   rundown    rundown, rundown-lock, scene-<id> (data-tally: "onair", "next"), transition-kind,
//              transition-duration, cut, take, take-error, scene-delete, scene-new
//   layers     layers, all-out, all-out-error, layer-<id>, layer-visible-<id>, layer-take-<id>, layer-out-<id>,
//              layer-quarantined-<id>, inspector, position-form, position-{x,y,width,height,
//              rotation,opacity,zindex}, position-apply, text-form, text-update,
//              template-form-<layerId>, template-update, field-error, form-error, layer-delete
//   templates  templates, template-upload, template-upload-error, template-<id>,
//              template-quarantine-<id>, template-add-<id>, template-swap-<id>,
//              template-rollback-<id>, template-delete-<id>
//   destinations destinations, destination-<id> (data-state: live|connecting|retrying|failed|
//              stopped|offair), destination-enabled-<id>, destination-remove-<id>,
//              destination-add, destination-id, destination-url, destination-add-submit,
//              destination-add-error
//   inputs     inputs, input-<id>, input-state-<id>, input-thumb-<id> (its latest picture),
//              input-enabled-<id>, input-layer-<id>, input-remove-<id>, input-add, input-kind, input-name, input-url,
//              input-transport, input-media, input-loop, input-create, input-error,
//              input-secret, push-url, stream-key, media-upload, media-error, media-<id>,
//              media-delete-<id>
//   recordings recordings, record, record-stop (while one runs), record-error, recording-on,
//              recording-<id> (data-state: recording|done|failed), recording-file-<n>-<id>,
//              recording-stop-<id>, recording-delete-<id>
//   assets     assets, asset-drop, asset-upload, asset-upload-error, asset-<id>,
//              asset-thumb-<id>, asset-layer-<id>, asset-delete-<id>, asset-error
//   audio      audio-panel, audio-strip-<id>, audio-gain-<id> (range, dB), audio-mute-<id>
//              (aria-pressed), audio-level-<id>, audio-master-gain, audio-master-mute,
//              audio-limiter (aria-pressed), loudness-momentary, loudness-short-term,
//              loudness-integrated, loudness-true-peak (numbers, "—" when silent or stopped);
//              a refusal: <control's testid>-error (e.g. audio-gain-<id>-error)
//   log        log (aria-live="polite"), log-clear

import { html, render, useRef, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { Dialog } from './ui.js';
import { Header, Monitor, Rundown, Log } from './show.js';
import { Layers } from './layers.js';
import { Templates, Inputs, Assets } from './library.js';
import { Destinations } from './destinations.js';
import { Recordings } from './recordings.js';
import { Mixer } from './audio.js';
import { SHORTCUTS, installShortcuts } from './shortcuts.js';

function ConfirmDialog() {
  const c = useStore((s) => s.confirm);
  const cancel = useRef();
  if (!c) return null;
  const ids = c.ids || { dialog: 'confirm-dialog', ok: 'confirm-ok', cancel: 'confirm-cancel' };
  const confirm = () => {
    actions.closeConfirm();
    c.onConfirm();
  };
  // Cancel has the focus: Enter or Space right after opening does nothing harmful.
  return html`<${Dialog} testid=${ids.dialog} title=${c.title} labelId="confirm-h" initialFocus=${cancel} onClose=${actions.closeConfirm}>
    <p>${c.message}</p>
    <div class="dialog-actions">
      <button type="button" ref=${cancel} data-testid=${ids.cancel} onClick=${actions.closeConfirm}>Cancel</button>
      <button type="button" class=${c.danger ? 'danger' : 'primary'} data-testid=${ids.ok} onClick=${confirm}>${c.confirmLabel}</button>
    </div>
  </${Dialog}>`;
}

function SignIn() {
  const auth = useStore((s) => s.auth);
  const input = useRef();
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  if (!auth.required) return null;
  const submit = async (e) => {
    e.preventDefault();
    if (!value.trim()) return;
    setBusy(true);
    const ok = await actions.signIn(value);
    setBusy(false);
    if (ok) setValue('');
  };
  return html`<${Dialog} testid="signin" title="Sign in" labelId="signin-h" initialFocus=${input}
      onClose=${actions.dismissSignIn}>
    <form onSubmit=${submit}>
      <p>This server needs an API token. It is kept for this tab only (sessionStorage).</p>
      <label for="token-input">API token</label>
      <input id="token-input" ref=${input} type="password" autocomplete="current-password" data-testid="token"
        value=${value} onInput=${(e) => setValue(e.target.value)} />
      ${auth.error ? html`<p class="error-text" role="alert" data-testid="signin-error">${auth.error}</p>` : null}
      <div class="dialog-actions">
        <button type="submit" class="primary" data-testid="signin-submit" disabled=${busy || !value.trim()}>Sign in</button>
      </div>
    </form>
  </${Dialog}>`;
}

function ShortcutMap() {
  const open = useStore((s) => s.help);
  const shortcuts = useStore((s) => s.shortcuts);
  const close = useRef();
  if (!open) return null;
  return html`<${Dialog} testid="shortcut-map" title="Keyboard shortcuts" labelId="shortcuts-h" initialFocus=${close}
      onClose=${() => actions.showHelp(false)}>
    <p>${shortcuts ? 'Shortcuts are on.' : 'Shortcuts are off (toggle in the header).'} They are ignored while a
      text field, a drop-down or a dialog has the focus (F5 works inside forms).</p>
    <table class="shortcuts">
      <tbody>${SHORTCUTS.map(([k, what]) => html`<tr key=${k}><th scope="row"><kbd>${k}</kbd></th><td>${what}</td></tr>`)}</tbody>
    </table>
    <div class="dialog-actions">
      <button type="button" ref=${close} onClick=${() => actions.showHelp(false)}>Close</button>
    </div>
  </${Dialog}>`;
}

function App() {
  return html`
    <${Header} />
    <main class="layout">
      <div class="col col-left"><${Rundown} /><${Destinations} /><${Recordings} /><${Log} /></div>
      <div class="col col-main"><${Monitor} /><${Mixer} /><${Layers} /></div>
      <div class="col col-right"><${Templates} /><${Inputs} /><${Assets} /></div>
    </main>
    <${ConfirmDialog} />
    <${SignIn} />
    <${ShortcutMap} />`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "Loading…" line
render(html`<${App} />`, root);
installShortcuts();
actions.startFeed();
