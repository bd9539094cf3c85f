// Recordings: record on/off with the time recorded, and the list with downloads (a link with
// a short-lived ticket, since a browser's download cannot send the token), stop and delete.

import { html } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, useAction, useTick, ErrorText, fmt, tid } from './ui.js';

function Elapsed({ since }) {
  useTick(1000);
  return html`<span class="mono">${fmt.duration(Date.now() - since)}</span>`;
}

const STATE_TEXT = { recording: 'REC', done: 'done', failed: 'failed' };

function RecordingItem({ rec, allowed }) {
  const action = useAction();
  const askDelete = () => actions.askConfirm({
    title: `Delete recording “${rec.name}”?`,
    message: `Its ${rec.files.length} file${rec.files.length === 1 ? '' : 's'} (${fmt.bytes(rec.bytes)}) are removed from the server.`,
    confirmLabel: 'Delete recording',
    danger: true,
    onConfirm: () => action.run(() => actions.deleteRecording(rec.id)),
  });
  const running = rec.state === 'recording';
  return html`<li class="card" data-testid=${tid('recording', rec.id)} data-state=${rec.state}>
    <div class="card-head">
      <strong>${rec.name}</strong>
      <span class="muted mono">${rec.id}</span>
      <span class=${`badge rec-state rec-${rec.state}`}>${STATE_TEXT[rec.state] || rec.state}</span>
    </div>
    <p class="muted">${running ? html`<${Elapsed} since=${rec.startedAt} />` : fmt.duration(rec.durationMs)}${` · ${fmt.bytes(rec.bytes)} · started ${new Date(rec.startedAt).toLocaleString()}`}</p>
    ${rec.error ? html`<p class="error-text">${rec.error}</p>` : null}
    <div class="row-actions">
      ${rec.files.map((f, n) => html`<button type="button" class="small" data-testid=${tid(`recording-file-${n}`, rec.id)}
          disabled=${action.busy} onClick=${() => action.run(() => actions.downloadRecording(rec.id, n))}
          title=${`${f.name}, ${fmt.bytes(f.bytes)}`}>Download ${rec.files.length > 1 ? `part ${n + 1}` : ''}</button>`)}
      ${running ? html`<button type="button" class="danger small" data-testid=${tid('recording-stop', rec.id)}
          disabled=${!allowed('recording.control') || action.busy}
          onClick=${() => action.run(() => actions.stopRecording(rec.id))}>Stop recording</button>`
        : html`<button type="button" class="danger small" data-testid=${tid('recording-delete', rec.id)}
          disabled=${!allowed('recording.delete') || action.busy} onClick=${askDelete}>Delete</button>`}
    </div>
    <${ErrorText} error=${action.error} />
  </li>`;
}

export function Recordings() {
  const recordings = useStore((s) => s.recordings);
  const stream = useStore((s) => s.stream);
  const allowed = useCan();
  const action = useAction();
  const live = !!(stream && stream.isLive);
  const running = recordings.filter((r) => r.state === 'recording');
  // While one runs, its size and duration are read again now and then.
  useTick(running.length ? 2000 : 0, actions.refreshRecordings);
  return html`<section class="panel" data-testid="recordings" aria-labelledby="recordings-h">
    <div class="panel-head"><h2 id="recordings-h">Recordings</h2>
      ${running.length ? html`<span class="badge rec-recording" data-testid="recording-on" role="status">
          REC <${Elapsed} since=${running[0].startedAt} /></span>` : null}
      ${running.length
        ? html`<button type="button" class="small danger" data-testid="record-stop" disabled=${!allowed('recording.control') || action.busy}
            onClick=${() => action.run(() => actions.stopRecording(running[0].id))}>Stop recording</button>`
        : html`<button type="button" class="small" data-testid="record" disabled=${!live || !allowed('recording.control') || action.busy}
            title=${live ? 'Record the program' : 'Go live first'}
            onClick=${() => action.run(() => actions.startRecording())}>Record</button>`}
    </div>
    <${ErrorText} error=${action.error} testid="record-error" />
    <ul class="cards">${recordings.map((r) => html`<${RecordingItem} key=${r.id} rec=${r} allowed=${allowed} />`)}</ul>
    ${recordings.length ? null : html`<p class="muted">No recordings.</p>`}
  </section>`;
}
