// Layers of the active scene: the list (visibility, per-layer Take/Out) and the inspector of
// the selected layer (position, text, template params). Forms marked `data-f5` are what F5
// updates; each sends only on an explicit Update.

import { html, useEffect, useReducer, useRef, useState } from './vendor/preact-htm.js';
import * as actions from './actions.js';
import { useStore } from './store.js';
import { useCan, useAction, NumberInput, ErrorText, tid } from './ui.js';
import { SchemaFields, initialValue, validate, errorsFromMessage } from './schema-form.js';

function quarantinedLayers(health) {
  return (health && health.components && health.components.templates && health.components.templates.quarantined) || {};
}

// Top of the stack first: by zIndex, then later in the list (drawn later) first.
function stackOrder(layers) {
  return layers.map((l, i) => ({ l, i }))
    .sort((a, b) => (b.l.position.zIndex || 0) - (a.l.position.zIndex || 0) || b.i - a.i)
    .map(({ l }) => l);
}

function onAirText(layer, graphic) {
  if (layer.visible === false) return 'hidden';
  if (graphic) {
    const p = layer.template.params;
    return p && p.visible === false ? 'out' : 'in';
  }
  return 'shown';
}

function LayerRow({ layer, selected, graphic, quarantined, allowed }) {
  const action = useAction();
  const may = allowed('layer.edit');
  const status = onAirText(layer, graphic);
  return html`<li class=${`layer-row${selected ? ' selected' : ''}`} data-layer-id=${layer.id} data-testid=${tid('layer', layer.id)}>
    <button type="button" class="layer-select" aria-pressed=${selected ? 'true' : 'false'}
      onClick=${() => actions.selectLayer(layer.id)}>
      <span class="layer-name">${layer.name || layer.id}</span>
      <span class="muted mono">${layer.id}</span>
    </button>
    <span class="badge kind">${layer.kind}${layer.kind === 'template' && layer.template ? `: ${layer.template.id}` : ''}</span>
    ${quarantined ? html`<span class="badge warn" data-testid=${tid('layer-quarantined', layer.id)}>QUARANTINED</span>` : null}
    <span class=${`layer-status status-${status}`}>${status}</span>
    <label class="inline">
      <input type="checkbox" data-testid=${tid('layer-visible', layer.id)} checked=${layer.visible !== false}
        disabled=${!may || action.busy} onChange=${(e) => action.run(() => actions.setVisible(layer.id, e.target.checked))} /> Visible
    </label>
    <button type="button" data-testid=${tid('layer-take', layer.id)} disabled=${!may || action.busy}
      onClick=${() => action.run(() => actions.layerTake(layer.id))}>Take</button>
    <button type="button" data-testid=${tid('layer-out', layer.id)} disabled=${!may || action.busy}
      onClick=${() => action.run(() => actions.layerOut(layer.id))}>Out</button>
    <${ErrorText} error=${action.error} />
  </li>`;
}

export function Layers() {
  const scene = useStore((s) => s.scene);
  const selectedLayer = useStore((s) => s.selectedLayer);
  const templates = useStore((s) => s.templates);
  const health = useStore((s) => s.health);
  const allowed = useCan();
  const quarantined = quarantinedLayers(health);
  const layers = scene ? stackOrder(scene.layers) : [];
  const selected = layers.find((l) => l.id === selectedLayer);
  const out = useAction();
  const shown = layers.filter((l) => actions.graphicShown(l, templates)).length;
  const askAllOut = () => actions.askConfirm({
    title: 'Take all graphics out?',
    message: `Takes the ${shown} template layer${shown === 1 ? '' : 's'} on air out at once. Images, text, shapes and video stay.`,
    confirmLabel: 'All graphics out',
    danger: true,
    onConfirm: () => out.run(() => actions.allGraphicsOut()),
  });
  return html`<section class="panel layers" data-testid="layers" aria-labelledby="layers-h">
    <div class="panel-head"><h2 id="layers-h">Layers on air</h2><span class="muted">${layers.length} · top first</span>
      <button type="button" class="small danger" data-testid="all-out" disabled=${!allowed('layer.edit') || !shown || out.busy}
        onClick=${askAllOut}>All graphics out</button></div>
    <${ErrorText} error=${out.error} testid="all-out-error" />
    <ul class="layer-list">
      ${layers.map((l) => html`<${LayerRow} key=${l.id} layer=${l} selected=${l.id === selectedLayer}
        graphic=${actions.isGraphic(l, templates)} quarantined=${!!quarantined[l.id]} allowed=${allowed} />`)}
    </ul>
    ${selected ? html`<${Inspector} key=${selected.id} layer=${selected} templates=${templates}
        quarantined=${!!quarantined[selected.id]} allowed=${allowed} />`
      : html`<p class="muted">Select a layer (here or on the preview) to edit it.</p>`}
  </section>`;
}

function Inspector({ layer, templates, quarantined, allowed }) {
  const del = useAction();
  const template = layer.kind === 'template' && layer.template ? templates.find((t) => t.id === layer.template.id) : null;
  const askDelete = () => actions.askConfirm({
    title: `Delete layer “${layer.name || layer.id}”?`,
    message: 'It disappears from the program at once.',
    confirmLabel: 'Delete layer',
    danger: true,
    onConfirm: () => del.run(() => actions.deleteLayer(layer.id)),
  });
  return html`<div class="inspector" data-testid="inspector" data-layer-id=${layer.id}>
    <h3>${layer.name || layer.id} <span class="muted">(${layer.kind})</span></h3>
    <${PositionForm} layer=${layer} disabled=${!allowed('layer.edit')} />
    ${layer.kind === 'text' && layer.text ? html`<${TextForm} layer=${layer} disabled=${!allowed('layer.edit')} />` : null}
    ${layer.kind === 'template' ? html`<${TemplateParams} layer=${layer} template=${template}
        quarantined=${quarantined} disabled=${!allowed('template.params')} />` : null}
    <div class="row-actions">
      <button type="button" class="danger" data-testid="layer-delete" disabled=${!allowed('layer.edit') || del.busy} onClick=${askDelete}>Delete layer</button>
    </div>
    <${ErrorText} error=${del.error} />
  </div>`;
}

/**
 * A form's draft, kept in step with the server until the operator edits it. Held in a ref so
 * that a submit right after a keystroke (F5) sees the latest value, not the last render's.
 */
function useDraft(source) {
  const key = JSON.stringify(source);
  const [, rerender] = useReducer((n) => n + 1, 0);
  const ref = useRef(null);
  if (ref.current === null) ref.current = { draft: source, dirty: false, key };
  const st = ref.current;
  if (!st.dirty && st.key !== key) Object.assign(st, { draft: source, key });
  return {
    draft: st.draft,
    dirty: st.dirty,
    current: () => st.draft,
    edit: (next) => { Object.assign(st, { draft: next, dirty: true }); rerender(); },
    reset: () => { Object.assign(st, { draft: source, key, dirty: false }); rerender(); },
    // Clean again only if nothing was typed while the update was on its way.
    saved: (sent) => { if (JSON.stringify(st.draft) === JSON.stringify(sent)) st.dirty = false; rerender(); },
  };
}

const POSITION_FIELDS = [
  ['x', 'X', {}], ['y', 'Y', {}], ['width', 'Width', { min: 0 }], ['height', 'Height', { min: 0 }],
  ['rotation', 'Rotation °', {}], ['opacity', 'Opacity', { min: 0, max: 1, step: 0.05 }], ['zIndex', 'Z index', { step: 1 }],
];

function positionErrors(p) {
  const out = {};
  for (const [k] of POSITION_FIELDS) if (typeof p[k] !== 'number' || !Number.isFinite(p[k])) out[k] = 'a number is required';
  if (!out.width && !(p.width > 0 && p.width <= 16384)) out.width = 'more than 0, at most 16384';
  if (!out.height && !(p.height > 0 && p.height <= 16384)) out.height = 'more than 0, at most 16384';
  if (!out.opacity && (p.opacity < 0 || p.opacity > 1)) out.opacity = 'between 0 and 1';
  if (!out.zIndex && !Number.isInteger(p.zIndex)) out.zIndex = 'a whole number';
  return out;
}

function PositionForm({ layer, disabled }) {
  const source = { rotation: 0, opacity: 1, zIndex: 0, ...layer.position };
  const { draft, dirty, edit, reset, saved, current } = useDraft(source);
  const [errors, setErrors] = useState({});
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    const sent = current();
    const errs = positionErrors(sent);
    setErrors(errs);
    if (Object.keys(errs).length || disabled || action.busy) return;
    action.run(async () => { await actions.putPosition(layer.id, sent); saved(sent); });
  };
  return html`<form class="position-form" data-testid="position-form" data-f5 novalidate onSubmit=${submit}>
    <fieldset disabled=${disabled}>
      <legend>Position (canvas px)</legend>
      <div class="grid-fields">
        ${POSITION_FIELDS.map(([k, label, attrs]) => html`<div class="field" key=${k}>
          <label for=${`pos-${k}`}>${label}</label>
          <${NumberInput} id=${`pos-${k}`} data-testid=${`position-${k.toLowerCase()}`} step=${attrs.step || 'any'}
            min=${attrs.min} max=${attrs.max} value=${draft[k]} aria-invalid=${errors[k] ? 'true' : undefined}
            onValue=${(v) => edit({ ...current(), [k]: v })} />
          ${errors[k] ? html`<p class="field-error" data-testid="field-error" role="alert">${errors[k]}</p>` : null}
        </div>`)}
      </div>
      <div class="row-actions">
        <button type="submit" data-testid="position-apply" disabled=${action.busy}>Apply position</button>
        ${dirty ? html`<button type="button" onClick=${() => { reset(); setErrors({}); }}>Revert</button><span class="muted">modified</span>` : null}
      </div>
      <${ErrorText} error=${action.error} testid="form-error" />
    </fieldset>
  </form>`;
}

function TextForm({ layer, disabled }) {
  const { draft, dirty, edit, reset, saved, current } = useDraft(layer.text.content);
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    if (disabled || action.busy) return;
    const sent = current();
    action.run(async () => {
      await actions.patchLayer(layer.id, { text: { content: sent } }, `updating the text of ${layer.id}`);
      saved(sent);
    });
  };
  return html`<form class="text-form" data-testid="text-form" data-f5 novalidate onSubmit=${submit}>
    <label for="text-content">Text <span class="muted">({{time}}, {{date}}, {{timecode}}, {{frame}} run live)</span></label>
    <textarea id="text-content" rows="3" value=${draft} disabled=${disabled} onInput=${(e) => edit(e.target.value)}></textarea>
    <div class="row-actions">
      <button type="submit" data-testid="text-update" disabled=${disabled || action.busy}>Update</button>
      ${dirty ? html`<button type="button" onClick=${reset}>Revert</button><span class="muted">modified</span>` : null}
    </div>
    <${ErrorText} error=${action.error} testid="form-error" />
  </form>`;
}

/**
 * The params of a template layer, as a form generated from the template's schema. Sent only
 * by Update (or F5); a 422 is shown above the button and, where the message names a field,
 * next to that field.
 */
function TemplateParams({ layer, template, quarantined, disabled }) {
  const info = template ? template.info : null;
  const source = info ? initialValue(info.defaultParams, layer.template.params) : {};
  const { draft, dirty, edit, reset, saved, current } = useDraft(source);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState('');
  const [done, setDone] = useState('');
  const action = useAction();
  const schema = (info && info.paramsSchema) || {};
  // A server refusal: the whole message, plus the fields it names.
  useEffect(() => {
    const err = action.error;
    if (!err) return;
    setFormError(err.message);
    if (err.status === 422) setErrors(errorsFromMessage(err.message, Object.keys(schema.properties || {})));
  }, [action.error]);
  if (!info) return html`<p class="notice">Template “${layer.template && layer.template.id}” is not loaded.</p>`;

  const submit = async (e) => {
    e.preventDefault();
    if (disabled || action.busy) return;
    const sent = current();
    const local = validate(schema, sent);
    setErrors(local);
    setDone('');
    if (Object.keys(local).length) {
      setFormError('Fix the marked fields first.');
      focusFirstError(e.target);
      return;
    }
    setFormError('');
    const r = await action.run(() => actions.updateParams(layer.id, sent));
    if (r) {
      saved(sent);
      setDone(r.appliedAtFrame != null ? `Updated; on air from frame ${r.appliedAtFrame}.` : 'Updated.');
    }
  };
  return html`<form class="template-form" data-testid=${tid('template-form', layer.id)} data-f5 novalidate onSubmit=${submit}>
    <h4>${info.name} <span class="muted">v${info.version} · version ${template.version} on the server</span></h4>
    ${quarantined ? html`<p class="notice warn">Quarantined after repeated faults: change its params (Update) or upload a new version to resume.</p>` : null}
    <${SchemaFields} schema=${schema} value=${draft} getValue=${current} errors=${errors} idPrefix=${`p-${layer.id}-`} disabled=${disabled}
      onChange=${(v) => { edit(v); setDone(''); }} />
    ${formError ? html`<p class="error-text" role="alert" data-testid="form-error">${formError}</p>` : null}
    ${done ? html`<p class="ok-text" role="status">${done}</p>` : null}
    <div class="row-actions">
      <button type="submit" class="primary" data-testid="template-update" disabled=${disabled || action.busy}>Update</button>
      ${dirty ? html`<button type="button" onClick=${() => { reset(); setErrors({}); setFormError(''); }}>Revert</button><span class="muted">modified, not sent</span>` : null}
    </div>
  </form>`;
}

function focusFirstError(form) {
  const el = form.querySelector('[aria-invalid="true"]');
  if (el) el.focus();
}
