// Keyboard shortcuts. One window listener; it does nothing when shortcuts are switched off,
// while a dialog is open, or (except F5) while a text field, textarea or select has focus.
// Space and Enter on a focused button, link or checkbox keep their native meaning.

import * as actions from './actions.js';
import { getState } from './store.js';

export const SHORTCUTS = [
  ['?', 'Show this shortcut map'],
  ['Space', 'Take the NEXT scene (cut)'],
  ['Enter', 'Take the NEXT scene with the selected transition'],
  ['↑ / ↓', 'Move NEXT up or down the rundown'],
  ['Esc / Backspace', 'Out: the focused (or selected) layer or graphic only — never the whole show'],
  ['F5', 'Update the focused form (params, position, text); else the selected layer\'s params'],
];

const EDITABLE = new Set(['INPUT', 'TEXTAREA', 'SELECT']);
const ACTIVATABLE = new Set(['BUTTON', 'A', 'SUMMARY', 'LABEL']);

const isEditable = (el) => !!el && (EDITABLE.has(el.tagName) || el.isContentEditable);
const isActivatable = (el) => !!el && (ACTIVATABLE.has(el.tagName) || el.getAttribute('role') === 'button');

// The layer the operator is on: the one whose row or inspector holds the focus, else the
// layer selected in the layers panel.
function focusedLayer(target) {
  const holder = target && target.closest && target.closest('[data-layer-id]');
  return holder ? holder.getAttribute('data-layer-id') : getState().selectedLayer;
}

// The form to update: the one holding the focus, else the selected layer's params form.
function focusedForm(target) {
  const mine = target && target.closest && target.closest('form[data-f5]');
  return mine || document.querySelector('.inspector form.template-form');
}

function onKeyDown(e) {
  if (!getState().shortcuts) return;
  if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  const target = e.target;

  if (e.key === 'F5') {
    // Never reload the console by accident; F5 is "update" here.
    e.preventDefault();
    const form = focusedForm(target);
    if (form) form.requestSubmit();
    return;
  }
  if (isEditable(target)) return;

  switch (e.key) {
    case '?':
      e.preventDefault();
      actions.showHelp(true);
      break;
    case ' ':
    case 'Enter':
      if (isActivatable(target)) return;
      e.preventDefault();
      if (!e.repeat) actions.take({ cut: e.key === ' ' }).catch(() => {});
      break;
    case 'ArrowUp':
    case 'ArrowDown':
      e.preventDefault();
      actions.moveNext(e.key === 'ArrowUp' ? -1 : 1);
      break;
    case 'Escape':
    case 'Backspace': {
      const layerId = focusedLayer(target);
      if (!layerId) return;
      e.preventDefault();
      if (!e.repeat) actions.layerOut(layerId).catch(() => {});
      break;
    }
    default:
      break;
  }
}

export function installShortcuts() {
  window.addEventListener('keydown', onKeyDown);
  return () => window.removeEventListener('keydown', onKeyDown);
}
