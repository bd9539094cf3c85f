// Destinations: where the program is pushed (the stream config's `destinations`), each with
// its connection state from /api/health. Keys are never shown: the server masks them, and a
// masked URL sent back unchanged keeps its stored key, so the list can be re-sent whole.

import { html, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, useAction, useTick, ErrorText, tid } from './ui.js';

// The words go with the colour: a state is never told by colour alone.
const STATE_TEXT = {
  live: 'Connected', connecting: 'Connecting…', retrying: 'Retrying', failed: 'Failed', stopped: 'Stopped',
};

function DestinationItem({ dest, status, live, allowed }) {
  const action = useAction();
  const state = !live ? 'offair' : (status ? status.state : 'connecting');
  const text = state === 'offair' ? (dest.enabled === false ? 'Disabled' : 'Off air') : STATE_TEXT[state] || state;
  const askRemove = () => actions.askConfirm({
    title: `Remove destination ${dest.id}?`,
    message: live ? 'It is disconnected at once; the other destinations stay connected.' : 'It is removed from the stream config.',
    confirmLabel: 'Remove',
    danger: true,
    onConfirm: () => action.run(() => actions.removeDestination(dest.id)),
  });
  return html`<li class="card" data-testid=${tid('destination', dest.id)} data-state=${state}>
    <div class="card-head">
      <strong>${dest.id}</strong>
      <span class=${`badge dest-${state}`}>${text}</span>
    </div>
    <div class="mono wrap muted">${dest.url}</div>
    ${status && status.lastError && state !== 'live' ? html`<div class="error-text">${status.lastError}</div>` : null}
    ${status ? html`<div class="muted">connections ${status.connects}, failures ${status.failures}</div>` : null}
    <div class="row-actions">
      <label class="inline">
        <input type="checkbox" data-testid=${tid('destination-enabled', dest.id)} checked=${dest.enabled !== false}
          disabled=${!allowed('stream.config') || action.busy}
          onChange=${(e) => action.run(() => actions.enableDestination(dest.id, e.target.checked))} /> Enabled
      </label>
      <button type="button" class="small danger" data-testid=${tid('destination-remove', dest.id)}
        disabled=${!allowed('stream.config') || action.busy} onClick=${askRemove}>Remove</button>
    </div>
    <${ErrorText} error=${action.error} testid="destination-error" />
  </li>`;
}

function AddDestination({ allowed }) {
  const [id, setId] = useState('');
  const [url, setUrl] = useState('');
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      await actions.addDestination({ id: id.trim(), url: url.trim() });
      setId('');
      setUrl('');
    });
  };
  const disabled = !allowed('stream.config') || action.busy;
  return html`<form class="add" data-testid="destination-add" onSubmit=${submit}>
    <label for="dest-id">Id</label>
    <input id="dest-id" type="text" required maxLength="64" pattern="[A-Za-z0-9_\\-]+" placeholder="youtube"
      data-testid="destination-id" value=${id} disabled=${disabled} onInput=${(e) => setId(e.target.value)} />
    <label for="dest-url">URL with its key</label>
    <input id="dest-url" type="url" required placeholder="rtmp://host/app/key" autocomplete="off"
      data-testid="destination-url" value=${url} disabled=${disabled} onInput=${(e) => setUrl(e.target.value)} />
    <button type="submit" data-testid="destination-add-submit" disabled=${disabled}>Add destination</button>
    <${ErrorText} error=${action.error} testid="destination-add-error" />
  </form>`;
}

export function Destinations() {
  const config = useStore((s) => s.config);
  const health = useStore((s) => s.health);
  const stream = useStore((s) => s.stream);
  const allowed = useCan();
  const live = !!(stream && stream.isLive);
  const list = (config && config.destinations) || [];
  // Connection states change without a feed message: look again every 2 s while pushing.
  useTick(live && list.length ? 2000 : 0, actions.refreshHealth);
  const statuses = (health && health.components && health.components.destinations) || {};
  return html`<section class="panel" data-testid="destinations" aria-labelledby="destinations-h">
    <div class="panel-head"><h2 id="destinations-h">Destinations</h2></div>
    <ul class="cards">${list.map((d) => html`<${DestinationItem} key=${d.id} dest=${d} status=${statuses[d.id]}
      live=${live} allowed=${allowed} />`)}</ul>
    ${list.length ? null : html`<p class="muted">None: the program is only served by the embedded RTMP server.</p>`}
    <${AddDestination} allowed=${allowed} />
  </section>`;
}
