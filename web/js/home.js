// The front page: sign in, the dashboards this key may see, and a new dashboard.

import { $, h, clear } from './dom.js';
import { ApiError, dashboards } from './api.js';
import { refusalMessage, signOut, withKey } from './signin.js';
import { ago, formatDateTime } from './format.js';

const PAGE_SIZE = 50;
const els = {
  signin: $('#signin'),
  section: $('#dashboards'),
  list: $('#dashboard-list'),
  empty: $('#list-empty'),
  more: $('#list-more'),
  listError: $('#list-error'),
  signOut: $('#sign-out'),
  newButton: $('#new-dashboard'),
  form: $('#create-form'),
  formError: $('#create-error'),
};
let loaded = 0;

function dashboardLink(dashboard) {
  const href = `/dashboards/${encodeURIComponent(dashboard.id)}`;
  const count = dashboard.widget_count ?? dashboard.widgets?.length ?? 0;
  return h(
    'li',
    { class: 'dashboard-item card', dataset: { dashboardId: dashboard.id } },
    h('a', { class: 'dashboard-link', href, dir: 'auto' }, dashboard.name),
    dashboard.prebuilt ? h('span', { class: 'badge', dataset: { status: 'prebuilt' } }, 'built-in') : null,
    dashboard.description ? h('p', { class: 'dashboard-description', dir: 'auto' }, dashboard.description) : null,
    h(
      'p',
      { class: 'dashboard-meta' },
      `${count} widget${count === 1 ? '' : 's'} · refreshes every ${dashboard.refresh_interval_seconds ?? '?'} s · `,
      h('time', { datetime: dashboard.updated_at || '', title: formatDateTime(dashboard.updated_at) }, `changed ${ago(dashboard.updated_at)}`),
      dashboard.created_by ? h('span', { dir: 'auto' }, ` · by ${dashboard.created_by}`) : null,
    ),
  );
}

function showPage(page) {
  els.section.hidden = false;
  els.signOut.hidden = false;
  clear(els.list);
  loaded = 0;
  appendPage(page);
}

function appendPage(page) {
  const items = page?.items || [];
  els.list.append(...items.map(dashboardLink));
  loaded += items.length;
  const total = page?.total ?? loaded;
  els.empty.hidden = loaded > 0;
  els.more.hidden = loaded >= total;
}

function showListError(error) {
  const refusal = refusalMessage(error);
  clear(els.listError).append(h('strong', {}, refusal.headline), ' ', h('span', { dir: 'auto' }, refusal.detail));
  els.listError.hidden = false;
}

async function createDashboard(event) {
  event.preventDefault();
  const data = new FormData(els.form);
  const name = String(data.get('name') || '').trim();
  const seconds = Number(data.get('refresh_interval_seconds'));
  els.formError.hidden = true;
  if (!name) return formError('A name is required.');
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) return formError('Refresh: a whole number of seconds from 1 to 3600.');
  const body = { name, refresh_interval_seconds: seconds, theme: String(data.get('theme') || 'light') };
  const description = String(data.get('description') || '').trim();
  if (description) body.description = description;
  const submit = $('#create-submit');
  submit.disabled = true;
  try {
    const created = await dashboards.create(body);
    location.assign(`/dashboards/${encodeURIComponent(created.id)}?edit=1`);
  } catch (error) {
    const detail = error instanceof ApiError && error.field ? ` (${error.field})` : '';
    formError(`Not created: ${error.message}${detail}`);
  } finally {
    submit.disabled = false;
  }
}

function formError(text) {
  els.formError.textContent = text;
  els.formError.hidden = false;
}

async function main() {
  els.signOut.addEventListener('click', signOut);
  els.newButton.addEventListener('click', () => {
    els.form.hidden = false;
    $('#create-name').focus();
  });
  $('#create-cancel').addEventListener('click', () => {
    els.form.reset();
    els.form.hidden = true;
  });
  els.form.addEventListener('submit', createDashboard);
  els.more.addEventListener('click', async () => {
    try {
      appendPage(await dashboards.list(PAGE_SIZE, loaded));
    } catch (error) {
      showListError(error);
    }
  });
  try {
    const page = await withKey(els.signin, () => dashboards.list(PAGE_SIZE, 0));
    showPage(page);
  } catch (error) {
    els.section.hidden = false;
    els.signOut.hidden = false;
    els.newButton.hidden = true;
    showListError(error);
  }
}

main();
