// Everything the console does against the server: loading state over REST, applying the
// WebSocket feed, and the operator's actions. Components call these; errors are logged here
// and re-thrown so a component can also show them next to its control.

import * as api from './api.js';
import { getState, setState, log, remember } from './store.js';

const enc = api.id;
let feed = null;

// --- Loading ---

function logFailure(what, e) {
  // A 401 opens the sign-in dialog instead.
  if (e.status !== 401) log('error', `${what}: ${e.message}`, { code: e.code });
}

async function load(key, path, what) {
  try {
    const value = await api.get(path);
    setState({ [key]: value });
    return value;
  } catch (e) {
    logFailure(`loading ${what}`, e);
    return null;
  }
}

export const refreshStream = () => load('stream', '/api/stream/state', 'the stream state');
export const refreshConfig = () => load('config', '/api/stream/config', 'the stream config');
export const refreshScene = () => load('scene', '/api/scene', 'the scene');
export const refreshTemplates = () => load('templates', '/api/templates', 'the templates');
export const refreshInputs = () => load('inputs', '/api/inputs', 'the inputs');
export const refreshMedia = () => load('media', '/api/media', 'the media files');
export const refreshAssets = () => load('assets', '/api/assets', 'the assets');
export const refreshRecordings = () => load('recordings', '/api/recordings', 'the recordings');
export const refreshAudio = () => load('audio', '/api/audio', 'the audio settings');

/** Who the page's token belongs to, and its role (what the console offers). */
export async function refreshMe() {
  try {
    const me = await api.get('/api/me');
    setState((s) => ({ auth: { ...s.auth, role: me.role, name: me.name } }));
  } catch (e) {
    setState((s) => ({ auth: { ...s.auth, role: null, name: null } }));
  }
}

export async function refreshHealth() {
  // /api/health answers 503 with its body when the server is down: show that body too.
  try {
    setState({ health: await api.get('/api/health') });
  } catch (e) {
    setState({ health: { status: e.status === 503 ? 'down' : 'unknown', components: {} } });
  }
}

export async function refreshScenes() {
  const scenes = await load('scenes', '/api/scenes', 'the scenes');
  if (!scenes) return;
  // Keep the rundown's selection when it still exists; otherwise pick the first scene not on air.
  setState((s) => {
    if (scenes.some((x) => x.id === s.nextScene)) return null;
    const next = scenes.find((x) => !x.active) || scenes[0];
    return { nextScene: next ? next.id : null };
  });
}

let lastFullRefresh = 0;

/** The full state, at load, after every reconnect and sign-in (`soon`: unless one just ran). */
export function refreshAll(soon = false) {
  if (soon && Date.now() - lastFullRefresh < 1000) return Promise.resolve();
  lastFullRefresh = Date.now();
  return Promise.all([
    refreshMe(), refreshStream(), refreshConfig(), refreshScene(), refreshScenes(), refreshTemplates(),
    refreshInputs(), refreshMedia(), refreshAssets(), refreshHealth(), refreshRecordings(), refreshAudio(),
  ]);
}

// Coalesces bursts (a fault storm, several scene changes in a row) into one request.
function debounce(fn, ms) {
  let t = 0;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}
const refreshScenesSoon = debounce(refreshScenes, 150);
const refreshHealthSoon = debounce(refreshHealth, 300);
const refreshConfigSoon = debounce(refreshConfig, 150);
const refreshTemplatesSoon = debounce(refreshTemplates, 300);
const refreshInputsSoon = debounce(refreshInputs, 300);

// --- The WebSocket feed ---

// audioLevels come ~10 times a second while live: meters without one for this long show "—".
const LEVELS_STALE_MS = 1500;
let levelsTimer = 0;

function onMessage({ type, payload }) {
  switch (type) {
    case 'stateUpdate': {
      const before = getState().stream;
      if (payload.error && (!before || before.error !== payload.error)) {
        log('error', payload.error, { code: 'pipeline', component: 'pipeline' });
      }
      // A stopped stream sends no previews: drop the last one rather than show it as current.
      setState(payload.isLive ? { stream: payload } : { stream: payload, preview: null, levels: null });
      refreshConfigSoon(); // stateUpdate also announces config changes
      break;
    }
    case 'metricsUpdate':
      setState({ metrics: payload });
      break;
    case 'previewFrame':
      setState({
        preview: {
          src: `data:image/${payload.format || 'jpeg'};base64,${payload.data}`,
          width: payload.width,
          height: payload.height,
          frameNumber: payload.frameNumber,
          timestamp: payload.timestamp,
          receivedAt: Date.now(),
        },
      });
      break;
    case 'sceneUpdate':
      // The active scene changed (an edit or a take): the list's active flag may have too.
      setState({ scene: payload });
      refreshScenesSoon();
      break;
    case 'inputUpdate': {
      const known = getState().inputs.some((i) => i.id === payload.id);
      if (!known) { refreshInputsSoon(); break; }
      setState((s) => ({
        inputs: s.inputs.map((i) => (i.id === payload.id ? { ...i, state: payload.state, stats: payload.stats } : i)),
      }));
      if (payload.state === 'failed' || payload.state === 'stalled') {
        const why = payload.stats && payload.stats.lastError ? `: ${payload.stats.lastError}` : '';
        log('warn', `input ${payload.id} is ${payload.state}${why}`, { code: `input_${payload.state}`, component: `input:${payload.id}` });
      }
      break;
    }
    case 'recordingUpdate': {
      setState((s) => {
        const rest = s.recordings.filter((r) => r.id !== payload.id);
        const known = rest.length !== s.recordings.length;
        return { recordings: known ? s.recordings.map((r) => (r.id === payload.id ? payload : r)) : [payload, ...rest] };
      });
      if (payload.state === 'done') log('info', `recording ${payload.id} finished (${Math.round(payload.durationMs / 1000)} s)`);
      break;
    }
    case 'error': {
      const { code = 'error', message = '', component = '' } = payload || {};
      log(code === 'template_fault' ? 'warn' : 'error', message, { code, component });
      if (component.startsWith('template:')) refreshHealthSoon();
      if (code === 'template_rolled_back') refreshTemplatesSoon();
      break;
    }
    case 'audioLevels':
      setState({ levels: payload });
      clearTimeout(levelsTimer);
      levelsTimer = setTimeout(() => setState({ levels: null }), LEVELS_STALE_MS);
      break;
    default:
      // Unknown types are ignored.
      break;
  }
}

let opens = 0;

export function startFeed() {
  // A 401: ask for a token, and stop the feed (it would fail the same way) until a sign-in.
  api.onUnauthorized(() => {
    if (feed) feed.stop();
    setState((s) => ({ auth: { ...s.auth, required: true }, conn: { status: 'signin', attempt: 0, retryAt: 0 } }));
  });
  setState((s) => ({ auth: { ...s.auth, signedIn: !!api.token.get() } }));
  feed = new api.Feed({
    url: api.feedUrl(),
    onMessage,
    onStatus: (conn) => {
      const before = getState().conn.status;
      setState({ conn });
      if (conn.status === 'lost' && before !== 'lost') log('error', 'connection to the server lost; still retrying', { code: 'connection_lost' });
      if (conn.status === 'connected' && before === 'lost') log('info', 'connection restored');
    },
    // Every (re)connect reloads the whole state (the server may have restarted), except a
    // first connect right after the initial load below.
    onOpen: () => {
      opens += 1;
      refreshAll(opens === 1);
    },
  });
  refreshAll();
  connectFeed();
  // Health has no feed message of its own (destinations, store, quarantined layers).
  setInterval(() => { if (getState().conn.status === 'connected') refreshHealth(); }, 10000);
}

/**
 * Opens the feed once the REST API takes the page's token (or needs none): a WebSocket
 * opened without one would be refused the same way, and loudly, in the browser's console.
 */
async function connectFeed() {
  try {
    await api.get('/api/stream/state');
  } catch (e) {
    if (e.status === 401) return; // onUnauthorized has asked for a token
  }
  feed.restart();
}

export const retryNow = () => feed && feed.restart();

// --- Access ---

export async function signIn(value) {
  api.token.set(value.trim());
  try {
    await api.get('/api/stream/state');
  } catch (e) {
    api.token.clear();
    const error = e.status === 401 ? 'That token was not accepted.' : e.message;
    setState((s) => ({ auth: { ...s.auth, required: true, signedIn: false, error, role: null, name: null } }));
    return false;
  }
  setState((s) => ({ auth: { ...s.auth, required: false, signedIn: true, error: '' } }));
  refreshAll();
  feed.restart();
  return true;
}

/** Esc on the sign-in dialog: close it; the header's "Sign in" opens it again. */
export const dismissSignIn = () => setState((s) => ({ auth: { ...s.auth, required: false } }));
export const askSignIn = () => setState((s) => ({ auth: { ...s.auth, required: true } }));

export function signOut() {
  api.token.clear();
  // Nothing read with the token stays on screen.
  setState({ auth: { required: false, signedIn: false, error: '', role: null, name: null }, scene: null, scenes: [], templates: [], inputs: [], media: [], assets: [], preview: null, secret: null, audio: null, levels: null });
  log('info', 'signed out');
  feed.stop();
  refreshAll(); // asks for a token again if the server needs one
  connectFeed();
}

// --- Helpers for components ---

/** Runs a request; logs a failure (and re-throws it for inline display). */
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    logFailure(what, e);
    throw e;
  }
}

const frameNote = (r) => (r && r.appliedAtFrame != null ? ` (on air from frame ${r.appliedAtFrame})` : '');

export function askConfirm(confirm) { setState({ confirm }); }
export function closeConfirm() { setState({ confirm: null }); }
export function showHelp(help) { setState({ help }); }
export const clearLog = () => setState({ log: [] });
export const clearSecret = () => setState({ secret: null });

export function setShortcuts(on) {
  remember('stream-manager.shortcuts', on);
  setState({ shortcuts: on });
}

// --- Stream ---

function streamControl(verb) {
  return attempt(`${verb} the stream`, async () => {
    const stream = await api.post(`/api/stream/${verb}`);
    setState(stream.isLive ? { stream } : { stream, preview: null, levels: null });
  });
}
export const goLive = () => streamControl('start');
export const pause = () => streamControl('pause');
export const resume = () => streamControl('resume');
export const stop = () => streamControl('stop');

export const enablePreview = () => attempt('turning the preview on', async () => {
  setState({ config: await api.patch('/api/stream/config', { preview: { enabled: true } }) });
});

// --- Destinations: the config's list is sent whole (a masked URL sent back keeps its key) ---

function changeDestinations(doing, done, change) {
  return attempt(doing, async () => {
    const { config } = getState();
    const destinations = change((config && config.destinations) || []);
    setState({ config: await api.patch('/api/stream/config', { destinations }) });
    log('info', done);
    refreshHealthSoon();
  });
}

export const addDestination = ({ id, url }) => changeDestinations(
  `adding destination ${id}`, `destination ${id} added`, (list) => [...list, { id, url, enabled: true }]);
export const removeDestination = (id) => changeDestinations(
  `removing destination ${id}`, `destination ${id} removed`, (list) => list.filter((d) => d.id !== id));
export const enableDestination = (id, enabled) => changeDestinations(
  `${enabled ? 'enabling' : 'disabling'} destination ${id}`, `destination ${id} ${enabled ? 'enabled' : 'disabled'}`,
  (list) => list.map((d) => (d.id === id ? { ...d, enabled } : d)));

// --- Rundown (named scenes) ---

export function setLocked(locked) {
  remember('stream-manager.rundownLocked', locked);
  setState({ locked });
}

export const selectNext = (nextScene) => setState({ nextScene });
export const setTransition = (t) => setState((s) => ({ transition: { ...s.transition, ...t } }));

/** Moves the NEXT selection up (-1) or down (+1) the rundown. */
export function moveNext(delta) {
  const { scenes, nextScene } = getState();
  if (!scenes.length) return;
  const i = scenes.findIndex((x) => x.id === nextScene);
  const j = Math.max(0, Math.min(scenes.length - 1, (i < 0 ? 0 : i + delta)));
  setState({ nextScene: scenes[j].id });
}

/** Puts the NEXT scene on air; `cut` forces a cut, else the selected transition. */
export function take({ cut = false } = {}) {
  const { nextScene, transition, locked } = getState();
  if (locked) { log('warn', 'the rundown is locked; unlock it to take'); return Promise.resolve(); }
  if (!nextScene) return Promise.resolve();
  const t = cut ? { kind: 'cut', durationMs: 0 } : transition;
  return attempt(`taking ${nextScene}`, async () => {
    const r = await api.post(`/api/scenes/${enc(nextScene)}/activate`, { transition: t });
    log('info', `took ${r.id} (${r.transition.kind}${r.transition.kind === 'cut' ? '' : ` ${r.transition.durationMs} ms`})${frameNote(r)}`);
    await Promise.all([refreshScenes(), refreshScene()]);
    advanceNext(r.id);
  });
}

// After a take, NEXT moves on from the scene now on air: to the one below it in the
// rundown, else the first one not on air (a second Take must not take it again).
function advanceNext(takenId) {
  const { scenes, nextScene } = getState();
  if (nextScene !== takenId) return;
  const i = scenes.findIndex((x) => x.id === takenId);
  const after = [...scenes.slice(i + 1), ...scenes.slice(0, i)].find((x) => x.id !== takenId);
  setState({ nextScene: after ? after.id : takenId });
}

export function createScene(name, copyOnAir) {
  const body = { name: name || undefined };
  if (copyOnAir && getState().scene) {
    const { canvas, layers } = getState().scene;
    body.scene = { canvas, layers };
  }
  return attempt('creating a scene', async () => {
    const r = await api.post('/api/scenes', body);
    log('info', `scene ${r.id} created`);
    await refreshScenes();
    setState({ nextScene: r.id });
  });
}

export const deleteScene = (sceneId) => attempt(`deleting scene ${sceneId}`, async () => {
  await api.del(`/api/scenes/${enc(sceneId)}`);
  log('info', `scene ${sceneId} deleted`);
  await refreshScenes();
});

// --- Layers of the active scene ---

export const selectLayer = (selectedLayer) => setState({ selectedLayer });

// Applies a layer the server answered with, before the sceneUpdate that confirms it.
function applyLayer(layer) {
  const { appliedAtFrame, ...clean } = layer;
  setState((s) => s.scene && {
    scene: { ...s.scene, layers: s.scene.layers.map((l) => (l.id === clean.id ? clean : l)) },
  });
}

export const patchLayer = (layerId, body, what = `changing layer ${layerId}`) =>
  attempt(what, async () => {
    const r = await api.patch(`/api/scene/layers/${enc(layerId)}`, body);
    applyLayer(r);
    return r;
  });

// Shows a change of a layer at once, before the server confirms it.
function changeLayerLocally(layerId, fields) {
  setState((s) => s.scene && {
    scene: { ...s.scene, layers: s.scene.layers.map((l) => (l.id === layerId ? { ...l, ...fields } : l)) },
  });
}

// Runs `request` after showing `fields` on the layer; a refusal puts the server's scene back.
async function optimistic(layerId, fields, request) {
  changeLayerLocally(layerId, fields);
  try {
    return await request();
  } catch (e) {
    refreshScene();
    throw e;
  }
}

/** Replaces a layer's position; shown at once, put back from the server if refused. */
export const putPosition = (layerId, position) => attempt(`moving layer ${layerId}`, () =>
  optimistic(layerId, { position }, async () => {
    const { appliedAtFrame, ...p } = await api.put(`/api/scene/layers/${enc(layerId)}/position`, position);
    changeLayerLocally(layerId, { position: p });
  }));

/** Shows or hides a layer; the checkbox follows at once, put back if refused. */
export const setVisible = (layerId, visible) =>
  optimistic(layerId, { visible }, () => patchLayer(layerId, { visible }));

/** The template of a template layer, if it is loaded. */
export function templateOf(layer) {
  return layer && layer.kind === 'template' && layer.template
    ? getState().templates.find((t) => t.id === layer.template.id) : null;
}

/**
 * A "graphic" is a template layer whose template has a boolean `visible` param (the bundled
 * lower-third animates in and out on it). Take/Out drive that param so the graphic animates;
 * any other layer is simply shown or hidden.
 */
export function isGraphic(layer, templates = getState().templates) {
  if (!layer || layer.kind !== 'template' || !layer.template) return false;
  const t = templates.find((x) => x.id === layer.template.id);
  const props = t && t.info.paramsSchema && t.info.paramsSchema.properties;
  return !!(props && props.visible && props.visible.type === 'boolean');
}

export function layerTake(layerId) {
  const layer = findLayer(layerId);
  if (!layer) return Promise.resolve();
  const body = isGraphic(layer) ? { visible: true, template: { params: { visible: true } } } : { visible: true };
  return patchLayer(layerId, body, `taking layer ${layerId}`);
}

export function layerOut(layerId) {
  const layer = findLayer(layerId);
  if (!layer) return Promise.resolve();
  const body = isGraphic(layer) ? { template: { params: { visible: false } } } : { visible: false };
  return patchLayer(layerId, body, `taking layer ${layerId} out`);
}

/** Whether a template layer shows now: visible, and for a graphic, taken in. */
export function graphicShown(layer, templates = getState().templates) {
  if (layer.kind !== 'template' || layer.visible === false) return false;
  const params = (layer.template && layer.template.params) || {};
  return !isGraphic(layer, templates) || params.visible !== false;
}

/**
 * Takes every template layer of the scene on air out at once (graphics animate out, other
 * template layers are hidden); images, text, shapes and video stay. The requests go in
 * parallel, so they land within a frame or two of each other.
 */
export function allGraphicsOut() {
  const { scene } = getState();
  const shown = scene ? scene.layers.filter((l) => graphicShown(l)) : [];
  return attempt('taking all graphics out', async () => {
    const results = await Promise.allSettled(shown.map((l) => layerOut(l.id)));
    const failed = results.filter((r) => r.status === 'rejected').length;
    log(failed ? 'error' : 'info', `all graphics out: ${shown.length - failed} of ${shown.length} taken out`);
    if (failed) throw results.find((r) => r.status === 'rejected').reason;
  });
}

export function findLayer(layerId) {
  const { scene } = getState();
  return scene ? scene.layers.find((l) => l.id === layerId) : null;
}

export const updateParams = (layerId, params) =>
  patchLayer(layerId, { template: { params } }, `updating the params of ${layerId}`);

export function addLayer(layer) {
  return attempt('adding a layer', async () => {
    const r = await api.post('/api/scene/layers', layer);
    log('info', `layer ${r.id} added${frameNote(r)}`);
    await refreshScene();
    setState({ selectedLayer: r.id });
    return r;
  });
}

export const deleteLayer = (layerId) => attempt(`deleting layer ${layerId}`, async () => {
  await api.del(`/api/scene/layers/${enc(layerId)}`);
  log('info', `layer ${layerId} deleted`);
  await refreshScene();
});

// A box of `w`×`h` centred on the canvas, at most the canvas.
function centred(w, h) {
  const c = (getState().scene && getState().scene.canvas) || { width: 1920, height: 1080 };
  const width = Math.min(w || c.width, c.width);
  const height = Math.min(h || c.height, c.height);
  return { x: Math.round((c.width - width) / 2), y: Math.round((c.height - height) / 2), width, height };
}

// --- Templates ---

export const uploadTemplate = (file) => attempt(`uploading ${file.name}`, async () => {
  const { status, body } = await api.upload('POST', '/api/templates', file, 'application/wasm');
  log('info', status === 201
    ? `template ${body.id} installed (version ${body.version})`
    : `these bytes are already held by template ${body.id}; nothing changed`);
  await refreshTemplates();
});

export const swapTemplate = (templateId, file) => attempt(`swapping ${templateId}`, async () => {
  const { body } = await api.upload('PUT', `/api/templates/${enc(templateId)}`, file, 'application/wasm');
  log('info', `template ${templateId} is now version ${body.version}${frameNote(body)}`);
  await Promise.all([refreshTemplates(), refreshHealth()]);
});

export const rollbackTemplate = (templateId) => attempt(`rolling ${templateId} back`, async () => {
  const r = await api.post(`/api/templates/${enc(templateId)}/rollback`);
  log('info', `template ${templateId} rolled back to version ${r.version}${frameNote(r)}`);
  await Promise.all([refreshTemplates(), refreshHealth()]);
});

export const deleteTemplate = (templateId) => attempt(`deleting template ${templateId}`, async () => {
  await api.del(`/api/templates/${enc(templateId)}`);
  log('info', `template ${templateId} deleted`);
  await refreshTemplates();
});

export function addTemplateLayer(t) {
  const [w, h] = t.info.defaultSize || [];
  return addLayer({ name: t.info.name || t.id, kind: 'template', position: centred(w, h), template: { id: t.id } });
}

// --- Inputs and media ---

export function createInput(body) {
  return attempt('creating an input', async () => {
    const r = await api.post('/api/inputs', body);
    log('info', `input ${r.id} created`);
    if (r.kind === 'rtmp' && r.streamKey) setState({ secret: { inputId: r.id, streamKey: r.streamKey, publishUrl: r.publishUrl } });
    await refreshInputs();
    return r;
  });
}

export const patchInput = (inputId, body) => attempt(`changing input ${inputId}`, async () => {
  await api.patch(`/api/inputs/${enc(inputId)}`, body);
  await refreshInputs();
});

// One request at a time per key: the answers (each the whole state) land in the order the
// changes were made, so a fader's answer cannot undo a mute's sent just after it.
const queues = new Map();
function serial(key, fn) {
  const run = (queues.get(key) || Promise.resolve()).then(fn);
  queues.set(key, run.catch(() => {}));
  return run;
}

/**
 * Sets an input's fader (`{gainDb}` and/or `{muted}`, merged). Its answer is the whole input
 * (inputUpdate carries only state and stats); a refusal reloads the inputs, then re-throws.
 */
export const setInputAudio = (inputId, audio) => serial(`input:${inputId}`, () => attempt(`changing the sound of input ${inputId}`, async () => {
  try {
    const r = await api.patch(`/api/inputs/${enc(inputId)}`, { audio });
    setState((s) => ({ inputs: s.inputs.map((i) => (i.id === r.id ? { ...i, ...r } : i)) }));
  } catch (e) {
    await refreshInputs();
    throw e;
  }
}));

export const deleteInput = (inputId) => attempt(`removing input ${inputId}`, async () => {
  await api.del(`/api/inputs/${enc(inputId)}`);
  log('info', `input ${inputId} removed`);
  await refreshInputs();
});

export const inputToLayer = (input) =>
  addLayer({ name: input.name || input.id, kind: 'video', position: centred(), video: { input: input.id, fit: 'contain' } });

export function uploadMedia(file, onProgress) {
  const type = file.type && file.type.startsWith('video/') ? file.type : 'application/octet-stream';
  return attempt(`uploading ${file.name}`, async () => {
    const { body } = await api.upload('POST', `/api/media?name=${encodeURIComponent(file.name)}`, file, type, onProgress);
    const what = body.videoCodec ? `${body.width}×${body.height}, ${body.videoCodec}` : `sound only, ${body.audioCodec}`;
    log('info', `media ${body.id} uploaded (${what})`);
    await refreshMedia();
    return body;
  });
}

export const deleteMedia = (mediaId) => attempt(`deleting media ${mediaId}`, async () => {
  await api.del(`/api/media/${enc(mediaId)}`);
  log('info', `media ${mediaId} deleted`);
  await refreshMedia();
});

// --- Program sound: the master fader, its mute and the limiter ---

/** PATCH /api/audio with a merge patch; a refusal reloads the settings, then re-throws. */
export const patchAudio = (body) => serial('audio', () => attempt('changing the program sound', async () => {
  try {
    setState({ audio: await api.patch('/api/audio', body) });
  } catch (e) {
    await refreshAudio();
    throw e;
  }
}));

// --- Assets ---

const ASSET_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', ttf: 'font/ttf', otf: 'font/otf' };

// Browsers often give fonts no type (or a legacy one): go by the extension then.
function assetType(file) {
  if (Object.values(ASSET_TYPES).includes(file.type)) return file.type;
  const ext = file.name.split('.').pop().toLowerCase();
  return ASSET_TYPES[ext] || file.type || 'application/octet-stream';
}

export function uploadAsset(file) {
  const type = assetType(file);
  return attempt(`uploading ${file.name}`, async () => {
    const { body } = await api.upload('POST', `/api/assets?name=${encodeURIComponent(file.name)}`, file, type);
    log('info', `asset ${body.id} uploaded (${body.kind}${body.kind === 'font' ? ` ${body.family || ''}` : ` ${body.width}×${body.height}`})`);
    await refreshAssets();
    return body;
  });
}

export const deleteAsset = (assetId) => attempt(`deleting asset ${assetId}`, async () => {
  await api.del(`/api/assets/${enc(assetId)}`);
  log('info', `asset ${assetId} deleted`);
  await refreshAssets();
});

export const assetToLayer = (asset) =>
  addLayer({ name: asset.name, kind: 'image', position: centred(asset.width, asset.height), image: { asset: asset.id, fit: 'contain' } });

// --- Recordings ---

export const startRecording = () => attempt('starting a recording', async () => {
  const r = await api.post('/api/recordings', {});
  log('info', `recording ${r.id} started`);
  await refreshRecordings();
});

export const stopRecording = (id) => attempt(`stopping recording ${id}`, async () => {
  await api.post(`/api/recordings/${enc(id)}/stop`);
  await refreshRecordings();
});

export const deleteRecording = (id) => attempt(`deleting recording ${id}`, async () => {
  await api.del(`/api/recordings/${enc(id)}`);
  log('info', `recording ${id} deleted`);
  await refreshRecordings();
});

/** Downloads file `n` through a short-lived link (the browser's download sends no token). */
export const downloadRecording = (id, n) => attempt(`downloading recording ${id}`, async () => {
  const { url } = await api.post(`/api/recordings/${enc(id)}/files/${n}/link`);
  const a = document.createElement('a');
  a.href = url;
  a.download = '';
  document.body.appendChild(a);
  a.click();
  a.remove();
});
