// The mixer: a strip per input (gain fader, mute, level), the master strip (fader, mute,
// limiter) and the program's loudness (EBU R128: momentary, short-term, integrated LUFS and
// true peak). Faders show the dragged value at once; the server hears the newest one, one
// request at a time, and always the value a drag ends on. A refusal is shown and the control
// goes back to the server's value.

import { html, useRef, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, ErrorText, tid } from './ui.js';

const MIN_DB = -60;
const MAX_DB = 12;
const SEND_GAP_MS = 100; // between two requests of one dragged fader

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(1) : '—');
// -60..0 dB → 0..100 % of a meter bar.
const pct = (v) => (typeof v === 'number' ? Math.max(0, Math.min(100, ((v - MIN_DB) / -MIN_DB) * 100)) : 0);

/**
 * A control's value while the operator moves it, and its requests: `send(v)` shows `v` and
 * queues it (only the newest waits); once the last request is answered, `shown` is the
 * server's `value` again. `error` is the last refusal (cleared by the next success).
 */
function useLatest(value, request) {
  const [local, setLocal] = useState(undefined);
  const [error, setError] = useState(null);
  const q = useRef({ busy: false, has: false, next: undefined }).current;
  q.request = request;
  const pump = async () => {
    if (q.busy || !q.has) return;
    q.busy = true;
    q.has = false;
    try {
      await q.request(q.next);
      setError(null);
    } catch (e) {
      setError(e);
      q.has = false; // a refused drag stops; the control shows the server's value
    }
    await new Promise((r) => setTimeout(r, SEND_GAP_MS));
    q.busy = false;
    if (q.has) pump();
    else setLocal(undefined);
  };
  const send = (v) => {
    setLocal(v);
    q.next = v;
    q.has = true;
    pump();
  };
  return { shown: local === undefined ? value : local, send, error };
}

function Fader({ id, label, gainDb, onGain, disabled, testid }) {
  const g = useLatest(gainDb, onGain);
  const text = `${g.shown > 0 ? '+' : ''}${g.shown.toFixed(1)} dB`;
  // `input` comes with every step of a drag or a key, the last one included.
  return html`<label for=${id} class="visually-hidden">${label}</label>
    <input type="range" id=${id} data-testid=${testid} min=${MIN_DB} max=${MAX_DB} step="0.5" value=${g.shown}
      aria-valuetext=${text} disabled=${disabled} onInput=${(e) => g.send(Number(e.target.value))} />
    <output for=${id} class="mono">${text}</output>
    <${ErrorText} error=${g.error} testid=${`${testid}-error`} />`;
}

// A button that is on or off (aria-pressed); `word` adds a visible "on"/"off", `of` a name
// for screen readers ("Mute Reel").
function Toggle({ on, label, of, word, onToggle, disabled, testid, title }) {
  const t = useLatest(on, onToggle);
  return html`<button type="button" class=${word ? 'small switch' : 'small'} aria-pressed=${t.shown ? 'true' : 'false'}
      data-testid=${testid} disabled=${disabled} title=${title} onClick=${() => t.send(!t.shown)}>
    ${label}${of ? html`<span class="visually-hidden"> ${of}</span>` : null}${word ? html` <span aria-hidden="true">${t.shown ? 'on' : 'off'}</span>` : null}</button>
    <${ErrorText} error=${t.error} testid=${`${testid}-error`} />`;
}

function Level({ id, name }) {
  const l = useStore((s) => s.levels && s.levels.sources[id]);
  const v = l ? (l.peakDbfs != null ? l.peakDbfs : l.momentaryLufs) : null;
  return html`<div class="level" data-testid=${tid('audio-level', id)} title=${`${name}: peak dBFS before the fader`}>
    <div class="bar" aria-hidden="true"><div style=${{ width: `${pct(v)}%` }}></div></div>
    <span class="mono">${num(v)}</span>
  </div>`;
}

function InputStrip({ input, allowed }) {
  const a = input.audio || { gainDb: 0, muted: false };
  const name = input.name || input.id;
  const may = allowed('audio.mix');
  return html`<li class="strip" data-testid=${tid('audio-strip', input.id)}>
    <strong class="strip-name wrap">${name}${a.muted ? html` <span class="badge warn">MUTED</span>` : null}</strong>
    <${Fader} id=${tid('gain', input.id)} label=${`Gain of ${name}`} gainDb=${a.gainDb} disabled=${!may}
      testid=${tid('audio-gain', input.id)} onGain=${(gainDb) => actions.setInputAudio(input.id, { gainDb })} />
    <${Toggle} on=${a.muted} label="Mute" testid=${tid('audio-mute', input.id)} disabled=${!may}
      of=${name} onToggle=${(muted) => actions.setInputAudio(input.id, { muted })} />
    <${Level} id=${input.id} name=${name} />
  </li>`;
}

function Loudness() {
  const p = useStore((s) => s.levels && s.levels.program) || {};
  const over = typeof p.truePeakDbtp === 'number' && p.truePeakDbtp > -1;
  const item = (testid, label, v, warn) => html`<div class=${`metric${warn ? ' warn' : ''}`}>
    <dt>${label}</dt><dd><span data-testid=${testid}>${num(v)}</span>${warn ? html` <span class="visually-hidden">(over -1 dBTP)</span>` : null}</dd>
  </div>`;
  return html`<div class="loudness">
    <div class="bar" aria-hidden="true" title="momentary loudness, -60..0 LUFS"><div style=${{ width: `${pct(p.momentaryLufs)}%` }}></div></div>
    <dl class="metrics">
      ${item('loudness-momentary', 'Momentary LUFS', p.momentaryLufs)}
      ${item('loudness-short-term', 'Short-term LUFS', p.shortTermLufs)}
      ${item('loudness-integrated', 'Integrated LUFS', p.integratedLufs)}
      ${item('loudness-true-peak', 'True peak dBTP', p.truePeakDbtp, over)}
    </dl>
  </div>`;
}

export function Mixer() {
  const inputs = useStore((s) => s.inputs);
  const audio = useStore((s) => s.audio);
  const config = useStore((s) => s.config);
  const allowed = useCan();
  const may = allowed('audio.mix') && !!audio;
  const m = (audio && audio.master) || { gainDb: 0, muted: false };
  const mode = config && config.audio;
  return html`<section class="panel mixer" data-testid="audio-panel" aria-labelledby="audio-h">
    <div class="panel-head"><h2 id="audio-h">Sound</h2></div>
    ${mode && mode !== 'mix' ? html`<p class="notice">The stream config's audio is “${mode}”: the mix goes on air with “mix”.</p>` : null}
    <${Loudness} />
    <ul class="strips">
      ${inputs.map((i) => html`<${InputStrip} key=${i.id} input=${i} allowed=${allowed} />`)}
      <li class="strip master">
        <strong class="strip-name">Master${m.muted ? html` <span class="badge warn">MUTED</span>` : null}</strong>
        <${Fader} id="gain-master" label="Master gain" gainDb=${m.gainDb} disabled=${!may} testid="audio-master-gain"
          onGain=${(gainDb) => actions.patchAudio({ master: { gainDb } })} />
        <${Toggle} on=${m.muted} label="Mute" testid="audio-master-mute" disabled=${!may} of="the program"
          onToggle=${(muted) => actions.patchAudio({ master: { muted } })} />
        <${Toggle} on=${!audio || audio.limiter} label="Limiter" word testid="audio-limiter" disabled=${!may}
          title="True-peak limiter: holds the program below -1 dBTP" onToggle=${(limiter) => actions.patchAudio({ limiter })} />
      </li>
    </ul>
    ${inputs.length ? null : html`<p class="muted">No inputs: each input's sound gets a strip here.</p>`}
  </section>`;
}
