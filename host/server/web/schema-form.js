// A form generated from a template's params JSON Schema (draft 2020-12, the subset templates
// use): strings (maxLength, pattern), numbers and integers (minimum, maximum, exclusive*),
// booleans, enums (also `oneOf`/`anyOf` of consts), `#rrggbb[aa]` colours, nested objects,
// arrays of strings, nullable types (`["string", "null"]`) and local `$ref`s. Anything else
// is edited as raw JSON.
//
// Values are addressed by JSON Pointer ("/home/score"), the same paths the server's
// `invalid_params` messages use, so a server error lands next to its field.

import { html, useState, useEffect } from './vendor/preact-htm.js';
import { NumberInput } from './ui.js';

/** Marks a raw JSON field whose text does not parse (validate() reports it). */
export const INVALID_JSON = Symbol('invalid JSON');

const COLOR = /^#([0-9a-f]{6}|[0-9a-f]{8})$/i;

function pointerGet(root, ptr) {
  let node = root;
  for (const raw of ptr.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node == null ? undefined : node[key];
  }
  return node;
}

const esc = (key) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

// Follows local `$ref`s (its sibling keywords — default, description — win) and merges `allOf`.
function resolve(schema, root, depth = 0) {
  if (!schema || typeof schema !== 'object' || depth > 16) return {};
  let s = schema;
  if (typeof s.$ref === 'string' && s.$ref.startsWith('#')) {
    const { $ref, ...rest } = s;
    s = { ...resolve(pointerGet(root, $ref.slice(1)), root, depth + 1), ...rest };
  }
  if (Array.isArray(s.allOf)) {
    const { allOf, ...rest } = s;
    s = allOf.reduce((acc, part) => ({ ...acc, ...resolve(part, root, depth + 1) }), rest);
  }
  return s;
}

/** What editor a schema gets: {kind, nullable, s (resolved schema), options?, item?}. */
export function describe(schema, root) {
  let s = resolve(schema, root);
  let nullable = false;
  // anyOf/oneOf: [X, {type: null}] is a nullable X; all consts is an enum.
  const alts = s.oneOf || s.anyOf;
  if (Array.isArray(alts)) {
    const rs = alts.map((a) => resolve(a, root));
    const nonNull = rs.filter((a) => a.type !== 'null');
    nullable = nonNull.length < rs.length;
    if (nonNull.length && nonNull.every((a) => a.const !== undefined || Array.isArray(a.enum))) {
      const options = nonNull.flatMap((a) => (a.const !== undefined ? [{ value: a.const, label: a.title || String(a.const) }] : a.enum.map((v) => ({ value: v, label: String(v) }))));
      return { kind: 'enum', nullable, s, options };
    }
    if (nonNull.length === 1) s = { ...nonNull[0], ...withoutAlts(s) };
    else return { kind: 'json', nullable, s };
  }
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.includes('null')) nullable = true;
  const nonNull = types.filter((t) => t !== 'null');
  if (Array.isArray(s.enum)) {
    const values = s.enum.filter((v) => v !== null);
    nullable = nullable || values.length < s.enum.length;
    return { kind: 'enum', nullable, s, options: values.map((v) => ({ value: v, label: String(v) })) };
  }
  if (s.const !== undefined) return { kind: 'enum', nullable, s, options: [{ value: s.const, label: String(s.const) }] };
  const type = nonNull.length === 1 ? nonNull[0] : nonNull.length === 0 && s.properties ? 'object' : null;
  switch (type) {
    case 'string':
      if (isColor(s)) return { kind: 'color', nullable, s };
      return { kind: (s.maxLength || 0) > 200 || s.format === 'textarea' ? 'textarea' : 'string', nullable, s };
    case 'number':
    case 'integer':
      return { kind: 'number', nullable, s, integer: type === 'integer' };
    case 'boolean':
      return { kind: 'boolean', nullable, s };
    case 'object':
      return s.properties ? { kind: 'object', nullable, s } : { kind: 'json', nullable, s };
    case 'array': {
      const item = describe(s.items || {}, root);
      const plain = ['string', 'textarea', 'color'].includes(item.kind) && !item.nullable;
      return plain ? { kind: 'list', nullable, s, item } : { kind: 'json', nullable, s };
    }
    default:
      return { kind: 'json', nullable, s };
  }
}

function withoutAlts(s) {
  const { oneOf, anyOf, ...rest } = s;
  return rest;
}

function isColor(s) {
  if (s.format === 'color') return true;
  const p = s.pattern || '';
  if (p.startsWith('^#') && /\{6\}/.test(p)) return true;
  return typeof s.default === 'string' && COLOR.test(s.default) && !s.pattern;
}

// A value for a field that is switched from "none" to set.
function blank(d) {
  if (d.s.default !== undefined && d.s.default !== null) return d.s.default;
  switch (d.kind) {
    case 'number': return d.s.minimum !== undefined ? d.s.minimum : 0;
    case 'boolean': return false;
    case 'enum': return d.options[0] ? d.options[0].value : null;
    case 'object': return {};
    case 'list': return [];
    case 'color': return '#000000';
    default: return '';
  }
}

/** The form's starting value: the defaults, overlaid with the layer's params. */
export function initialValue(defaults, params) {
  const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  const merge = (a, b) => {
    if (!isObj(a) || !isObj(b)) return b === undefined ? a : b;
    const out = { ...a };
    for (const k of Object.keys(b)) out[k] = merge(a[k], b[k]);
    return out;
  };
  return merge(structuredClone(defaults || {}), structuredClone(params || {}));
}

// --- Validation (before sending; the server checks again and has the last word) ---

/** {pointer: message} for the problems this form can see. */
export function validate(schema, value, root = schema, ptr = '', out = {}) {
  const d = describe(schema, root);
  const s = d.s;
  if (value === INVALID_JSON) { out[ptr] = 'not valid JSON'; return out; }
  if (value === undefined) return out;
  if (value === null) {
    if (!d.nullable && d.kind !== 'json') out[ptr] = 'a value is required';
    return out;
  }
  switch (d.kind) {
    case 'enum':
      if (!d.options.some((o) => o.value === value)) out[ptr] = `must be one of ${d.options.map((o) => o.label).join(', ')}`;
      break;
    case 'string': case 'textarea': case 'color': {
      if (typeof value !== 'string') { out[ptr] = 'must be text'; break; }
      const len = [...value].length;
      if (s.maxLength !== undefined && len > s.maxLength) out[ptr] = `at most ${s.maxLength} characters (now ${len})`;
      else if (s.minLength !== undefined && len < s.minLength) out[ptr] = `at least ${s.minLength} characters`;
      else if (s.pattern ? !matches(s.pattern, value) : d.kind === 'color' && !COLOR.test(value)) {
        out[ptr] = d.kind === 'color' ? 'a colour #rrggbb or #rrggbbaa' : `must match ${s.pattern}`;
      }
      break;
    }
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) out[ptr] = 'must be a number';
      else if (d.integer && !Number.isInteger(value)) out[ptr] = 'must be a whole number';
      else if (s.minimum !== undefined && value < s.minimum) out[ptr] = `at least ${s.minimum}`;
      else if (s.maximum !== undefined && value > s.maximum) out[ptr] = `at most ${s.maximum}`;
      else if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) out[ptr] = `more than ${s.exclusiveMinimum}`;
      else if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) out[ptr] = `less than ${s.exclusiveMaximum}`;
      break;
    case 'object':
      for (const [k, sub] of Object.entries(s.properties)) {
        const p = `${ptr}/${esc(k)}`;
        if (value[k] === undefined && (s.required || []).includes(k)) out[p] = 'required';
        else validate(sub, value[k], root, p, out);
      }
      break;
    case 'list':
      if (s.maxItems !== undefined && value.length > s.maxItems) out[ptr] = `at most ${s.maxItems} items`;
      if (s.minItems !== undefined && value.length < s.minItems) out[ptr] = `at least ${s.minItems} items`;
      value.forEach((v, i) => validate(s.items || {}, v, root, `${ptr}/${i}`, out));
      break;
    default:
      break;
  }
  return out;
}

function matches(pattern, value) {
  try { return new RegExp(pattern, 'u').test(value); } catch { return true; }
}

/**
 * Field errors named in a server message, e.g. `layers[5].template.params: /home/score: -1 is
 * less than the minimum of 0; /name: …`. A template's own refusal may name a field as
 * `name`, "name", or by starting with it (`name: …`, `name must …`, `home.score …`); such a
 * top-level field gets the message too.
 */
export function errorsFromMessage(message, fieldNames = []) {
  const out = {};
  const at = message.indexOf('params: ');
  const rest = at >= 0 ? message.slice(at + 'params: '.length) : message;
  for (const part of rest.split('; ')) {
    const m = /^(\/[^\s:]*): ([\s\S]*)$/.exec(part);
    if (m) out[m[1]] = out[m[1]] ? `${out[m[1]]}; ${m[2]}` : m[2];
  }
  if (!Object.keys(out).length) {
    for (const k of fieldNames) {
      const q = [`\`${k}\``, `"${k}"`, `'${k}'`];
      const leads = rest.startsWith(k) && /^[\s:.]/.test(rest.slice(k.length));
      if (leads || q.some((x) => rest.includes(x))) out[`/${esc(k)}`] = rest;
    }
  }
  return out;
}

// --- The fields ---

const domId = (prefix, ptr) => `${prefix}${ptr.replace(/[^A-Za-z0-9_-]/g, '_') || '_root'}`;

function getIn(obj, keys) {
  return keys.reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setIn(obj, keys, v) {
  if (!keys.length) return v;
  const [k, ...rest] = keys;
  const base = obj ?? (typeof k === 'number' ? [] : {});
  const copy = Array.isArray(base) ? base.slice() : { ...base };
  copy[k] = setIn(base[k], rest, v);
  return copy;
}

/**
 * The fields of an object schema. `value` is the whole params object; `getValue()` returns
 * its newest state (edits apply to it, never to a render's stale copy); `onChange(next)`
 * gets a new whole object; `errors` is {pointer: message}; `idPrefix` keeps DOM ids unique.
 */
export function SchemaFields({ schema, value, getValue, onChange, errors, idPrefix, disabled }) {
  const ctx = {
    root: schema, errors, idPrefix, disabled,
    get: (keys) => getIn(getValue(), keys),
    set: (keys, v) => onChange(setIn(getValue(), keys, v)),
  };
  return html`<${Field} ctx=${ctx} schema=${schema} value=${value} keys=${[]} label=${null} />`;
}

function Field({ ctx, schema, value, keys, label }) {
  const ptr = keys.map((k) => `/${esc(k)}`).join('');
  const onValue = (v) => ctx.set(keys, v);
  const d = describe(schema, ctx.root);
  const id = domId(ctx.idPrefix, ptr);
  const error = ctx.errors[ptr];
  const helpId = d.s.description ? `${id}-help` : null;
  const errId = error ? `${id}-err` : null;
  const describedBy = [helpId, errId].filter(Boolean).join(' ') || undefined;
  const a11y = { id, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': describedBy };
  const isNone = value === null || (value === undefined && d.nullable);
  const title = d.s.title || humanize(label);

  if (d.kind === 'object' && !isNone) {
    // The root object is the form itself; nested ones are fieldsets.
    const inner = Object.entries(d.s.properties).map(([k, sub]) => html`
      <${Field} key=${k} ctx=${ctx} schema=${sub} value=${value ? value[k] : undefined} keys=${[...keys, k]} label=${k} />`);
    if (ptr === '') return html`<div class="schema-fields">${inner}${errorLine(error, errId)}</div>`;
    return html`<fieldset class="schema-object">
      <legend>${title}</legend>
      ${noneToggle(d, ptr, id, isNone, onValue, ctx.disabled)}
      ${help(d, helpId)}${inner}${errorLine(error, errId)}
    </fieldset>`;
  }

  let control;
  if (isNone) {
    control = html`<span class="muted">none (template default)</span>`;
  } else {
    switch (d.kind) {
      case 'boolean':
        control = html`<input type="checkbox" ...${a11y} checked=${!!value} disabled=${ctx.disabled}
          onChange=${(e) => onValue(e.target.checked)} />`;
        break;
      case 'enum': {
        const index = d.options.findIndex((o) => o.value === value);
        control = html`<select ...${a11y} disabled=${ctx.disabled} value=${String(index)}
          onChange=${(e) => onValue(d.options[Number(e.target.value)].value)}>
          ${index < 0 ? html`<option value="-1">(choose)</option>` : null}
          ${d.options.map((o, i) => html`<option value=${String(i)}>${o.label}</option>`)}
        </select>`;
        break;
      }
      case 'number':
        control = html`<${NumberInput} ...${a11y} value=${value} onValue=${onValue} disabled=${ctx.disabled}
          min=${d.s.minimum} max=${d.s.maximum} step=${d.integer ? 1 : 'any'} />`;
        break;
      case 'color':
        control = html`<${ColorInput} a11y=${a11y} value=${value ?? ''} onValue=${onValue} disabled=${ctx.disabled} maxLength=${d.s.maxLength} />`;
        break;
      case 'textarea':
        control = html`<textarea ...${a11y} rows="3" maxLength=${d.s.maxLength} disabled=${ctx.disabled}
          value=${value ?? ''} onInput=${(e) => onValue(e.target.value)}></textarea>`;
        break;
      case 'string':
        control = html`<input type="text" ...${a11y} maxLength=${d.s.maxLength} disabled=${ctx.disabled}
          value=${value ?? ''} onInput=${(e) => onValue(e.target.value)} />`;
        break;
      case 'list':
        control = html`<${ListEditor} ctx=${ctx} d=${d} id=${id} ptr=${ptr} keys=${keys} value=${Array.isArray(value) ? value : []} />`;
        break;
      default:
        control = html`<${JsonInput} a11y=${a11y} value=${value} onValue=${onValue} disabled=${ctx.disabled} />`;
    }
  }
  return html`<div class="field" data-field=${ptr}>
    <label for=${id}>${title}${d.kind === 'json' ? html` <span class="muted">(JSON)</span>` : null}</label>
    <div class="field-control">${control}${noneToggle(d, ptr, id, isNone, onValue, ctx.disabled)}</div>
    ${help(d, helpId)}${errorLine(error, errId)}
  </div>`;
}

// A param key as a label: "accentColor" → "Accent color", "font_size" → "Font size".
function humanize(key) {
  if (typeof key !== 'string') return key;
  const words = key.replace(/[_-]+/g, ' ').replace(/([a-z0-9])([A-Z])/g, '$1 $2').trim().toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function help(d, helpId) {
  if (!helpId) return null;
  const limits = [];
  if (d.s.minimum !== undefined) limits.push(`min ${d.s.minimum}`);
  if (d.s.maximum !== undefined) limits.push(`max ${d.s.maximum}`);
  if (d.s.maxLength !== undefined) limits.push(`≤ ${d.s.maxLength} chars`);
  return html`<p class="help" id=${helpId}>${d.s.description}${limits.length ? ` (${limits.join(', ')})` : ''}</p>`;
}

function errorLine(error, errId) {
  return error ? html`<p class="field-error" id=${errId} data-testid="field-error" role="alert">${error}</p>` : null;
}

// "none" switches a nullable field between null and a value.
function noneToggle(d, ptr, id, isNone, onValue, disabled) {
  if (!d.nullable) return null;
  return html`<label class="inline">
    <input type="checkbox" checked=${isNone} disabled=${disabled} aria-controls=${id}
      onChange=${(e) => onValue(e.target.checked ? null : blank(d))} /> none
  </label>`;
}

// <input type=color> knows only #rrggbb: it edits the colour and keeps an alpha suffix.
function ColorInput({ a11y, value, onValue, disabled, maxLength }) {
  const rgb = COLOR.test(value) ? value.slice(0, 7) : '#000000';
  const alpha = COLOR.test(value) && value.length === 9 ? value.slice(7) : '';
  return html`<span class="color-input">
    <input type="color" value=${rgb.toLowerCase()} disabled=${disabled} aria-label="Pick colour"
      onInput=${(e) => onValue(e.target.value + alpha)} />
    <input type="text" ...${a11y} class="mono" size="10" maxLength=${maxLength || 9} spellcheck="false"
      value=${value} disabled=${disabled} onInput=${(e) => onValue(e.target.value)} />
  </span>`;
}

// A list of strings: edit, add, remove, reorder.
function ListEditor({ ctx, d, id, ptr, keys, value }) {
  const list = () => (Array.isArray(ctx.get(keys)) ? ctx.get(keys) : []);
  const onValue = (next) => ctx.set(keys, next);
  const set = (i, v) => ctx.set([...keys, i], v);
  const move = (i, by) => {
    const next = list().slice();
    const [x] = next.splice(i, 1);
    next.splice(i + by, 0, x);
    onValue(next);
  };
  const full = d.s.maxItems !== undefined && value.length >= d.s.maxItems;
  return html`<div class="list-editor" id=${id} role="group">
    <ol>
      ${value.map((item, i) => {
        const itemId = domId(ctx.idPrefix, `${ptr}/${i}`);
        const err = ctx.errors[`${ptr}/${i}`];
        return html`<li key=${i}>
          <input type="text" id=${itemId} aria-label=${`Item ${i + 1}`} value=${item} disabled=${ctx.disabled}
            maxLength=${d.item.s.maxLength} aria-invalid=${err ? 'true' : undefined}
            onInput=${(e) => set(i, e.target.value)} />
          <button type="button" class="small" aria-label=${`Move item ${i + 1} up`} disabled=${ctx.disabled || i === 0} onClick=${() => move(i, -1)}>↑</button>
          <button type="button" class="small" aria-label=${`Move item ${i + 1} down`} disabled=${ctx.disabled || i === value.length - 1} onClick=${() => move(i, 1)}>↓</button>
          <button type="button" class="small" aria-label=${`Remove item ${i + 1}`} disabled=${ctx.disabled} onClick=${() => onValue(list().filter((_, j) => j !== i))}>✕</button>
          ${err ? html`<p class="field-error" data-testid="field-error" role="alert">${err}</p>` : null}
        </li>`;
      })}
    </ol>
    <button type="button" disabled=${ctx.disabled || full} onClick=${() => onValue([...list(), ''])}>Add item</button>
  </div>`;
}

// Raw JSON for what the generator does not know; an unparsable text is INVALID_JSON.
function JsonInput({ a11y, value, onValue, disabled }) {
  const show = (v) => (v === undefined || v === INVALID_JSON ? '' : JSON.stringify(v, null, 2));
  const [text, setText] = useState(show(value));
  useEffect(() => {
    if (value !== INVALID_JSON && show(value) !== safeFormat(text)) setText(show(value));
  }, [value]);
  return html`<textarea ...${a11y} class="mono" rows="4" spellcheck="false" disabled=${disabled} value=${text}
    onInput=${(e) => {
      setText(e.target.value);
      if (!e.target.value.trim()) { onValue(undefined); return; }
      try { onValue(JSON.parse(e.target.value)); } catch { onValue(INVALID_JSON); }
    }}></textarea>`;
}

function safeFormat(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}
