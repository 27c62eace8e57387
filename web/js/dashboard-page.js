// The dashboard page: /dashboards/{id}. Draws every widget, keeps it live over the GraphQL
// subscription, switches to the wall-screen mode, and edits the dashboard (widgets, layout,
// settings) without any JSON to write.

import { $, h, clear, append } from './dom.js';
import { ApiError, authorization, dashboards } from './api.js';
import { refusalMessage, signOut, withKey } from './signin.js';
import { GraphQLSubscription, websocketUrl } from './live.js';
import { WidgetView, normalizeWidgetData } from './widgets.js';
import { adjust, bottomRow, clampLayout, loadSavedQueries, settingsDialog, sortByLayout, widgetDialog } from './editor.js';
import { ago, formatDateTime } from './format.js';
import { baseFontSize } from './charts.js';

const els = {
  root: document.documentElement,
  title: $('#dashboard-title'),
  description: $('#dashboard-description'),
  live: $('#live-status'),
  grid: $('#grid'),
  signin: $('#signin'),
  banner: $('#banner'),
  editToggle: $('#edit-toggle'),
  wallToggle: $('#wall-toggle'),
  wallExit: $('#wall-exit'),
  signOut: $('#sign-out'),
  editBar: $('#edit-bar'),
  dirty: $('#edit-dirty'),
  save: $('#edit-save'),
};

const state = {
  id: decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || ''),
  dashboard: null,
  views: new Map(), // widget id (or a new widget's draft key) -> WidgetView
  data: new Map(), // widget id -> WidgetData
  draft: null, // edit mode: the working copy
  catalog: null, // widget types, metrics, dimensions, saved queries
  live: null,
  liveState: 'connecting',
  refreshedAt: null,
  wall: false,
  fontSize: 0,
  newKeys: 0,
};

// ---- drawing -------------------------------------------------------------------------------------

function dark() {
  return state.wall || state.dashboard?.theme === 'dark';
}

const viewContext = {
  get dark() {
    return dark();
  },
};

function shownWidgets() {
  return state.draft ? state.draft.widgets : state.dashboard?.widgets || [];
}

function keyOf(widget) {
  return widget.id || widget.key;
}

function applyTheme() {
  const theme = dark() ? 'dark' : 'light';
  if (els.root.dataset.theme !== theme) {
    els.root.dataset.theme = theme;
    for (const view of state.views.values()) view.redraw();
  }
}

function renderHeader() {
  const dashboard = state.dashboard;
  const name = state.draft ? state.draft.name : dashboard.name;
  const description = state.draft ? state.draft.description : dashboard.description;
  els.title.textContent = name;
  document.title = `${name} · Analytics`;
  els.description.textContent = description || '';
  els.description.hidden = !description;
  els.editToggle.hidden = !dashboard.can_edit || !!state.draft;
  els.signOut.hidden = false;
}

function renderGrid() {
  const widgets = sortByLayout(shownWidgets());
  const columns = state.dashboard.columns || 12;
  els.grid.style.setProperty('--columns', String(columns));
  els.grid.style.setProperty('--rows', String(Math.max(1, bottomRow(widgets))));
  els.grid.dataset.columns = String(columns);
  const keep = new Set();
  for (const widget of widgets) {
    const key = keyOf(widget);
    keep.add(key);
    let view = state.views.get(key);
    if (!view) {
      view = new WidgetView(widget, viewContext);
      state.views.set(key, view);
      const data = widget.id ? state.data.get(widget.id) : null;
      if (data) view.setData(data);
      else if (!widget.id) view.showPlaceholder('New widget: its data shows once the dashboard is saved.');
    } else {
      view.setDefinition(widget);
    }
    decorate(view, widget);
    // Document order is layout order: the one-column phone layout follows it.
    els.grid.append(view.el);
  }
  for (const [key, view] of state.views) {
    if (!keep.has(key)) {
      view.destroy();
      state.views.delete(key);
    }
  }
  if (!widgets.length) {
    els.grid.dataset.empty = state.draft ? 'Add a widget to start.' : 'This dashboard has no widgets yet.';
  } else {
    delete els.grid.dataset.empty;
  }
}

function applyWidgetData(list) {
  for (const raw of list || []) {
    const data = normalizeWidgetData(raw);
    if (!data.widget_id) continue;
    state.data.set(data.widget_id, data);
    state.views.get(data.widget_id)?.setData(data);
  }
}

function tick() {
  const now = Date.now();
  for (const view of state.views.values()) view.tick(now);
  renderLiveState(now);
}

const LIVE_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  refused: 'not live: key refused',
  failed: 'not live',
  stopped: 'paused',
};

function renderLiveState(now = Date.now()) {
  els.live.dataset.state = state.liveState;
  let text = LIVE_TEXT[state.liveState] || state.liveState;
  if (state.liveState === 'live' && state.refreshedAt) text = `live · last change ${ago(state.refreshedAt, now)}`;
  if (els.live.textContent !== text) els.live.textContent = text;
  els.live.title = state.refreshedAt ? `widgets last changed ${formatDateTime(state.refreshedAt)}` : '';
}

// ---- banner --------------------------------------------------------------------------------------

function showBanner(kind, parts, actions = []) {
  append(clear(els.banner), [
    h('div', { class: 'banner-text' }, parts),
    actions.some(Boolean) ? h('div', { class: 'banner-actions' }, actions) : null,
    h('button', { type: 'button', class: 'banner-close', 'aria-label': 'Dismiss', onclick: hideBanner }, '×'),
  ]);
  els.banner.dataset.kind = kind;
  els.banner.hidden = false;
}

function hideBanner() {
  els.banner.hidden = true;
  clear(els.banner);
}

function showPageError(headline, detail, retry = null) {
  clear(els.grid);
  showBanner('error', [h('strong', {}, headline), ' ', h('span', { dir: 'auto' }, detail || '')], [
    h('a', { href: '/', class: 'button secondary' }, 'All dashboards'),
    retry ? h('button', { type: 'button', class: 'secondary', onclick: retry }, 'Try again') : null,
  ]);
}

// ---- live updates --------------------------------------------------------------------------------

function subscriptionQuery() {
  // The id is written as a literal so the document fits the argument's type (String or ID) alike.
  return `subscription DashboardUpdates {
  dashboardUpdates(dashboardId: ${JSON.stringify(state.id)}) {
    dashboardId version refreshedAt removedWidgetIds
    widgets { widgetId widgetType title asOf refreshedAt data error digest }
  }
}`;
}

function startLive() {
  state.live?.stop();
  state.live = new GraphQLSubscription({
    url: websocketUrl('/graphql'),
    authorization: () => authorization(),
    query: subscriptionQuery(),
    onNext: (data) => onUpdate(data.dashboardUpdates),
    onError: (errors, fatal) => {
      const message = errors.map((e) => e?.message || String(e)).join('; ');
      showBanner(fatal ? 'error' : 'warning', [h('strong', {}, fatal ? 'Live updates stopped.' : 'Live update error.'), ' ', h('span', { dir: 'auto' }, message)], [
        fatal ? h('button', { type: 'button', class: 'secondary', onclick: () => startLive() }, 'Reconnect') : null,
      ]);
    },
    onState: (liveState, detail) => {
      state.liveState = liveState;
      renderLiveState();
      if (liveState === 'refused') {
        showBanner('error', [
          h('strong', {}, 'Live updates refused: this API key was not accepted.'),
          ' ',
          h('span', { dir: 'auto' }, detail?.reason || ''),
        ], [h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign in again')]);
      }
    },
  });
  state.live.start();
}

let refetching = null;

function onUpdate(update) {
  if (!update) return;
  state.refreshedAt = update.refreshedAt || state.refreshedAt;
  for (const id of update.removedWidgetIds || []) state.data.delete(id);
  applyWidgetData(update.widgets);
  if (update.version != null && update.version !== state.dashboard.version) refetchDefinition(update.version);
  else if (update.removedWidgetIds?.length && !state.draft) renderGrid();
  renderLiveState();
}

/** The dashboard was saved elsewhere (or here): read its definition again. */
function refetchDefinition(version) {
  if (refetching) return;
  refetching = (async () => {
    try {
      const fresh = await dashboards.get(state.id);
      if (state.draft) {
        state.latestVersion = fresh.version;
        showBanner('warning', [
          h('strong', {}, `This dashboard was changed elsewhere (now version ${fresh.version}).`),
          ' Saving your edits will be refused as a conflict; you can overwrite or discard them then.',
        ]);
        return;
      }
      state.dashboard = fresh;
      renderHeader();
      applyTheme();
      renderGrid();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) showPageError('This dashboard was deleted.', error.message);
    } finally {
      refetching = null;
      // A second change may have come while this one was read.
      if (!state.draft && state.dashboard.version !== version && version > state.dashboard.version) refetchDefinition(version);
    }
  })();
}

async function loadData() {
  try {
    const data = await dashboards.data(state.id);
    if (!state.refreshedAt) state.refreshedAt = data.refreshed_at;
    applyWidgetData(data.widgets);
  } catch (error) {
    showBanner('warning', [h('strong', {}, 'The widgets could not be read.'), ' ', h('span', { dir: 'auto' }, error.message)]);
  }
}

// ---- wall mode -----------------------------------------------------------------------------------

function setWall(on, { fromUser = false } = {}) {
  if (on && state.draft) return;
  state.wall = on;
  els.root.classList.toggle('wall', on);
  els.wallToggle.setAttribute('aria-pressed', String(on));
  const url = new URL(location.href);
  if (on) url.searchParams.set('wall', '1');
  else url.searchParams.delete('wall');
  history.replaceState(null, '', url);
  if (fromUser && on && document.fullscreenEnabled && !document.fullscreenElement) {
    els.root.requestFullscreen().catch(() => {});
  }
  if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
  applyTheme();
  rescale();
}

let wallPointerTimer = null;
function revealWallExit() {
  if (!state.wall) return;
  els.root.classList.add('wall-pointer');
  clearTimeout(wallPointerTimer);
  wallPointerTimer = setTimeout(() => els.root.classList.remove('wall-pointer'), 2500);
}

/** Charts draw text in px: when the page's type scale changes (4K, wall), they are drawn again. */
function rescale() {
  const size = baseFontSize();
  if (size !== state.fontSize) {
    state.fontSize = size;
    for (const view of state.views.values()) view.redraw();
  }
}

// ---- edit mode -----------------------------------------------------------------------------------

async function ensureCatalog() {
  if (state.catalog) return state.catalog;
  const [answer, savedQueries] = await Promise.all([dashboards.widgetTypes(), loadSavedQueries()]);
  state.catalog = {
    widgetTypes: answer.widget_types || [],
    metrics: answer.metrics || [],
    dimensions: answer.dimensions || [],
    savedQueries,
  };
  return state.catalog;
}

function enterEdit() {
  const d = state.dashboard;
  if (!d.can_edit || state.draft) return;
  if (state.wall) setWall(false);
  state.draft = {
    baseVersion: d.version,
    name: d.name,
    description: d.description,
    refresh_interval_seconds: d.refresh_interval_seconds,
    theme: d.theme,
    widgets: d.widgets.map((w) => ({
      id: w.id,
      key: w.id,
      widget_type: w.widget_type,
      title: w.title,
      config: structuredClone(w.config || {}),
      layout: clampLayout(w.layout || { x: 0, y: 0, w: 4, h: 4 }, d.columns || 12),
    })),
    dirty: false,
  };
  state.latestVersion = null;
  els.root.classList.add('editing');
  els.editBar.hidden = false;
  els.wallToggle.disabled = true;
  markDirty(false);
  renderHeader();
  renderGrid();
  ensureCatalog().catch((error) => showBanner('error', [h('strong', {}, 'The widget types could not be read.'), ' ', error.message]));
}

function leaveEdit() {
  state.draft = null;
  els.root.classList.remove('editing');
  els.editBar.hidden = true;
  els.wallToggle.disabled = false;
  for (const view of state.views.values()) view.el.classList.remove('invalid');
  renderHeader();
  applyTheme();
  renderGrid();
}

function markDirty(dirty = true) {
  if (state.draft) state.draft.dirty = dirty;
  els.dirty.hidden = !dirty;
}

function decorate(view, widget) {
  const tools = view.tools;
  clear(tools);
  view.el.tabIndex = state.draft ? 0 : -1;
  if (!state.draft) return;
  const button = (action, label, text, onclick) => h('button', { type: 'button', class: 'tool', dataset: { action }, 'aria-label': label, title: label, onclick }, text);
  const columns = state.dashboard.columns || 12;
  const change = (delta) => {
    if (adjust(state.draft.widgets, widget, delta, columns)) {
      markDirty();
      renderGrid();
      view.el.focus();
    }
  };
  const handle = h('span', { class: 'tool drag-handle', 'aria-hidden': 'true', title: 'Drag to move' }, '✥');
  handle.addEventListener('pointerdown', (event) => startDrag(event, widget, handle));
  tools.append(
    handle,
    button('move-left', 'Move left', '←', () => change({ dx: -1 })),
    button('move-right', 'Move right', '→', () => change({ dx: 1 })),
    button('move-up', 'Move up', '↑', () => change({ dy: -1 })),
    button('move-down', 'Move down', '↓', () => change({ dy: 1 })),
    button('narrower', 'Narrower', '⇠', () => change({ dw: -1 })),
    button('wider', 'Wider', '⇢', () => change({ dw: 1 })),
    button('shorter', 'Shorter', '⇡', () => change({ dh: -1 })),
    button('taller', 'Taller', '⇣', () => change({ dh: 1 })),
    button('configure', 'Configure', '⚙', () => configureWidget(widget)),
    button('delete', 'Delete widget', '✕', () => deleteWidget(widget)),
  );
  view.el.onkeydown = (event) => {
    if (!state.draft || event.target !== view.el) return;
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (!steps) return;
    event.preventDefault();
    // Arrows move; with Shift they resize.
    change(event.shiftKey ? { dw: steps[0], dh: steps[1] } : { dx: steps[0], dy: steps[1] });
  };
}

function startDrag(event, widget, handle) {
  if (!state.draft || event.button !== 0) return;
  event.preventDefault();
  handle.setPointerCapture(event.pointerId);
  const columns = state.dashboard.columns || 12;
  const style = getComputedStyle(els.grid);
  const gap = parseFloat(style.columnGap) || 0;
  const rect = els.grid.getBoundingClientRect();
  const cellWidth = (rect.width - gap * (columns - 1)) / columns + gap;
  const rowHeight = (parseFloat(style.gridAutoRows) || 64) + (parseFloat(style.rowGap) || 0);
  const start = { x: event.clientX, y: event.clientY, layout: { ...widget.layout } };
  const move = (e) => {
    const dx = Math.round((e.clientX - start.x) / cellWidth);
    const dy = Math.round((e.clientY - start.y) / rowHeight);
    const target = clampLayout({ ...start.layout, x: start.layout.x + dx, y: start.layout.y + dy }, columns);
    if (target.x !== widget.layout.x || target.y !== widget.layout.y) {
      adjust(state.draft.widgets, widget, { dx: target.x - widget.layout.x, dy: target.y - widget.layout.y }, columns);
      markDirty();
      renderGrid();
    }
  };
  const end = () => {
    handle.removeEventListener('pointermove', move);
    handle.removeEventListener('pointerup', end);
    handle.removeEventListener('pointercancel', end);
  };
  handle.addEventListener('pointermove', move);
  handle.addEventListener('pointerup', end);
  handle.addEventListener('pointercancel', end);
}

async function addWidget() {
  let catalog;
  try {
    catalog = await ensureCatalog();
  } catch (error) {
    showBanner('error', [h('strong', {}, 'The widget types could not be read.'), ' ', error.message]);
    return;
  }
  const result = await widgetDialog({ catalog });
  if (!result) return;
  const type = catalog.widgetTypes.find((t) => t.type === result.widget_type);
  const columns = state.dashboard.columns || 12;
  const size = type?.default_layout || { w: 4, h: 4 };
  const widget = {
    key: `new-${++state.newKeys}`,
    ...result,
    layout: clampLayout({ x: 0, y: bottomRow(state.draft.widgets), w: size.w, h: size.h }, columns),
  };
  state.draft.widgets.push(widget);
  markDirty();
  renderGrid();
  state.views.get(widget.key)?.el.scrollIntoView({ block: 'nearest' });
}

async function configureWidget(widget) {
  let catalog;
  try {
    catalog = await ensureCatalog();
  } catch (error) {
    showBanner('error', [h('strong', {}, 'The widget types could not be read.'), ' ', error.message]);
    return;
  }
  const result = await widgetDialog({ widget, catalog });
  if (!result) return;
  const changed = JSON.stringify(result.config) !== JSON.stringify(widget.config) || result.title !== widget.title;
  Object.assign(widget, result);
  if (changed) {
    markDirty();
    renderGrid();
    state.views.get(keyOf(widget))?.showPlaceholder('Changed: the new data shows once the dashboard is saved.');
  }
}

function deleteWidget(widget) {
  state.draft.widgets = state.draft.widgets.filter((w) => w !== widget);
  markDirty();
  renderGrid();
}

async function editSettings() {
  const result = await settingsDialog(state.draft);
  if (!result) return;
  Object.assign(state.draft, result);
  markDirty();
  renderHeader();
}

function saveBody(version) {
  const d = state.draft;
  return {
    name: d.name,
    description: d.description ?? null,
    refresh_interval_seconds: d.refresh_interval_seconds,
    theme: d.theme,
    version,
    widgets: sortByLayout(d.widgets).map((w) => ({
      ...(w.id ? { id: w.id } : {}),
      widget_type: w.widget_type,
      title: w.title,
      config: w.config || {},
      layout: { ...w.layout },
    })),
  };
}

/** The draft widget a field path like "widgets[2].config.metric" or "widgets.2.layout" names. */
function widgetOfField(field) {
  const match = /^widgets(?:\[(\d+)\]|\.(\d+))/.exec(field || '');
  if (!match) return null;
  return sortByLayout(state.draft.widgets)[Number(match[1] ?? match[2])] || null;
}

async function save({ version = state.draft.baseVersion } = {}) {
  els.save.disabled = true;
  for (const view of state.views.values()) view.el.classList.remove('invalid');
  try {
    const saved = await dashboards.update(state.id, saveBody(version));
    hideBanner();
    state.dashboard = saved;
    leaveEdit();
    showBanner('success', [h('strong', {}, 'Saved.'), ` Version ${saved.version}.`]);
    setTimeout(() => els.banner.dataset.kind === 'success' && hideBanner(), 4000);
    loadData();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 409) return showConflict(error);
    if (error.status === 401) return showBanner('error', [h('strong', {}, 'Not saved: this API key was not accepted.'), ' ', h('span', { dir: 'auto' }, error.message)]);
    const widget = widgetOfField(error.field);
    const view = widget && state.views.get(keyOf(widget));
    view?.el.classList.add('invalid');
    showBanner('error', [
      h('strong', {}, 'Not saved.'),
      ' ',
      h('span', { dir: 'auto' }, error.message),
      widget ? h('span', { dir: 'auto' }, ` (widget “${widget.title}”)`) : error.field ? ` (${error.field})` : '',
    ]);
  } finally {
    els.save.disabled = false;
  }
}

function showConflict(error) {
  showBanner(
    'conflict',
    [
      h('strong', {}, 'Not saved: someone else saved this dashboard while you were editing it.'),
      ` You started from version ${state.draft.baseVersion}${error.details?.current_version ? `; it is now at version ${error.details.current_version}` : ''}. Your changes are still here. `,
      h('span', { class: 'server-message', dir: 'auto' }, error.message),
    ],
    [
      h('button', { type: 'button', class: 'primary', dataset: { action: 'overwrite' }, onclick: overwrite }, 'Overwrite with my version'),
      h('button', { type: 'button', class: 'secondary', dataset: { action: 'discard' }, onclick: discardAndReload }, 'Discard mine, load theirs'),
    ],
  );
}

async function overwrite() {
  try {
    const latest = await dashboards.get(state.id);
    await save({ version: latest.version });
  } catch (error) {
    showBanner('error', [h('strong', {}, 'Not saved.'), ' ', error.message]);
  }
}

async function discardAndReload() {
  hideBanner();
  state.dashboard = await dashboards.get(state.id);
  leaveEdit();
  loadData();
}

// ---- start ---------------------------------------------------------------------------------------

function wireControls() {
  els.signOut.addEventListener('click', signOut);
  els.editToggle.addEventListener('click', enterEdit);
  els.wallToggle.addEventListener('click', () => setWall(!state.wall, { fromUser: true }));
  els.wallExit.addEventListener('click', () => setWall(false));
  $('#add-widget').addEventListener('click', addWidget);
  $('#dashboard-settings').addEventListener('click', editSettings);
  $('#edit-cancel').addEventListener('click', () => {
    hideBanner();
    leaveEdit();
  });
  els.save.addEventListener('click', () => save());
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.wall) setWall(false);
  });
  document.addEventListener('fullscreenchange', () => {
    // Leaving full screen (Esc) leaves the wall mode it was entered with.
    if (!document.fullscreenElement && state.wall && state.wallWasFullscreen) setWall(false);
    state.wallWasFullscreen = !!document.fullscreenElement;
  });
  document.addEventListener('pointermove', revealWallExit);
  window.addEventListener('beforeunload', (event) => {
    if (state.draft?.dirty) event.preventDefault();
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(rescale, 150);
  });
}

async function main() {
  wireControls();
  const params = new URLSearchParams(location.search);
  if (params.get('wall') === '1') setWall(true);
  if (!state.id) {
    showPageError('No dashboard named in the address.', 'Open one from the list of dashboards.');
    return;
  }
  let dashboard;
  try {
    dashboard = await withKey(els.signin, () => dashboards.get(state.id));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) showPageError('No such dashboard.', error.message);
    else if (error instanceof ApiError && error.status === 403) showPageError('This API key may not open this dashboard.', error.message);
    else showPageError(refusalMessage(error).headline, error.message, () => location.reload());
    els.signOut.hidden = false;
    state.liveState = 'stopped';
    renderLiveState();
    return;
  }
  state.dashboard = dashboard;
  state.fontSize = baseFontSize();
  renderHeader();
  applyTheme();
  renderGrid();
  await loadData();
  startLive();
  setInterval(tick, 1000);
  tick();
  if (params.get('edit') === '1') {
    const url = new URL(location.href);
    url.searchParams.delete('edit');
    history.replaceState(null, '', url);
    enterEdit();
  }
}

main();
