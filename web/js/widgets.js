// One widget on the grid: its card (title, freshness, error) and the body drawn by its data's kind.

import { h, clear } from './dom.js';
import { Chart, baseFontSize, seriesOption, tableBarOption, tablePieOption, funnelOption, retentionOption } from './charts.js';
import { ago, formatCell, formatChange, formatDateTime, formatValue, NUMERIC_COLUMN_TYPES } from './format.js';

/** WidgetData from REST (snake_case) or from the subscription (camelCase), in one shape. */
export function normalizeWidgetData(raw) {
  const pick = (snake, camel) => (raw[snake] !== undefined ? raw[snake] : raw[camel]);
  return {
    widget_id: pick('widget_id', 'widgetId'),
    widget_type: pick('widget_type', 'widgetType'),
    title: raw.title,
    as_of: pick('as_of', 'asOf') ?? null,
    refreshed_at: pick('refreshed_at', 'refreshedAt') ?? null,
    data: parseMaybeJson(raw.data),
    error: parseMaybeJson(raw.error),
    digest: raw.digest ?? null,
  };
}

function parseMaybeJson(value) {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The renderer of one kind of data; ``draw(data)`` may be called again with new data. */
class CounterBody {
  constructor(body) {
    this.value = h('div', { class: 'counter-value', dir: 'ltr' });
    this.label = h('div', { class: 'counter-label', dir: 'auto' });
    this.change = h('div', { class: 'counter-change' });
    body.append(h('div', { class: 'counter' }, this.value, this.label, this.change));
  }

  draw(data) {
    this.value.textContent = formatValue(data.value, data.unit, { short: true });
    this.value.title = formatValue(data.value, data.unit);
    this.label.textContent = data.label || '';
    const change = formatChange(data.change_percent);
    this.change.textContent = change ? `${change} vs previous (${formatValue(data.previous, data.unit, { short: true })})` : '';
    this.change.dataset.trend = data.change_percent > 0 ? 'up' : data.change_percent < 0 ? 'down' : 'flat';
  }
}

function isEmpty(data) {
  switch (data.kind) {
    case 'series':
      return !data.x?.length || !data.series?.length;
    case 'table':
      return !data.rows?.length;
    case 'funnel':
      return !data.steps?.length;
    case 'retention':
      return !data.cohorts?.length;
    default:
      return false;
  }
}

class ChartBody {
  constructor(body, build, context) {
    this.build = build;
    this.context = context;
    this.before = h('div', { class: 'chart-summary' });
    this.container = h('div', { class: 'chart' });
    body.append(this.before, this.container);
    this.data = null;
    this.fontSize = 0;
    this.chart = new Chart(this.container, context.dark, () => this.refit());
  }

  /** The chart's type size: the page's, but smaller in a small widget (large type on a wall, short rows). */
  textScale() {
    const height = this.container.clientHeight || 240;
    return Math.round(Math.max(10, Math.min(baseFontSize(), height / 9)));
  }

  refit() {
    if (this.data && this.textScale() !== this.fontSize) this.draw(this.data);
  }

  draw(data) {
    this.data = data;
    this.fontSize = this.textScale();
    this.before.textContent = '';
    if (isEmpty(data)) {
      this.before.textContent = 'No data for this period yet';
    } else if (data.kind === 'funnel' && data.overall_conversion_rate != null) {
      this.before.textContent = `Overall conversion ${formatValue(data.overall_conversion_rate, 'ratio')}`;
    }
    this.chart.set(this.build(data, { fontSize: this.fontSize }, this.context.dark));
  }

  dispose() {
    this.chart.dispose();
  }
}

class TableBody {
  constructor(body) {
    this.wrap = h('div', { class: 'table-wrap' });
    body.append(this.wrap);
  }

  draw(data) {
    const columns = data.columns || [];
    const rows = data.rows || [];
    const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col', dir: 'auto', class: NUMERIC_COLUMN_TYPES.has(c.type) ? 'num' : null }, c.label || c.name)));
    const body = rows.length
      ? rows.map((row) =>
          h(
            'tr',
            {},
            columns.map((c, i) => h('td', { dir: 'auto', class: NUMERIC_COLUMN_TYPES.has(c.type) ? 'num' : null }, formatCell(row[i], c.type))),
          ),
        )
      : h('tr', {}, h('td', { colspan: String(Math.max(1, columns.length)), class: 'empty' }, 'No rows'));
    clear(this.wrap).append(h('table', { class: 'data-table' }, h('thead', {}, head), h('tbody', {}, body)));
  }
}

class StatusBody {
  constructor(body) {
    this.root = h('div', { class: 'status' });
    body.append(this.root);
  }

  draw(data) {
    const badge = (status) => h('span', { class: 'badge', dataset: { status: status || 'unknown' } }, status || 'unknown');
    clear(this.root).append(
      h('div', { class: 'status-overall' }, badge(data.status)),
      h(
        'ul',
        { class: 'status-checks' },
        (data.checks || []).map((check) =>
          h('li', {}, badge(check.status), h('span', { class: 'check-name', dir: 'auto' }, check.name), h('span', { class: 'check-detail', dir: 'auto' }, check.detail ?? '')),
        ),
      ),
    );
  }
}

function bodyFor(data, body, context) {
  switch (data.kind) {
    case 'counter':
      return new CounterBody(body);
    case 'series':
      return new ChartBody(body, seriesOption, context);
    case 'table':
      if (data.chart === 'bar') return new ChartBody(body, tableBarOption, context);
      if (data.chart === 'pie') return new ChartBody(body, tablePieOption, context);
      return new TableBody(body);
    case 'funnel':
      return new ChartBody(body, funnelOption, context);
    case 'retention':
      return new ChartBody(body, retentionOption, context);
    case 'status':
      return new StatusBody(body);
    default:
      return null;
  }
}

/** What decides which renderer draws the data: a change here replaces the body. */
function shapeOf(data) {
  return data ? `${data.kind}/${data.kind === 'table' ? data.chart || 'table' : ''}` : 'none';
}

export class WidgetView {
  /**
   * @param {object} widget  the widget's definition (id, widget_type, title, config, layout)
   * @param {object} context {dark: boolean}
   */
  constructor(widget, context) {
    this.context = context;
    this.title = h('h2', { class: 'widget-title', dir: 'auto' });
    this.freshness = h('span', { class: 'widget-freshness' });
    this.error = h('div', { class: 'widget-error', role: 'alert', hidden: true });
    this.body = h('div', { class: 'widget-body' });
    this.tools = h('div', { class: 'widget-tools' });
    this.el = h(
      'article',
      { class: 'widget', dataset: { state: 'loading' } },
      h('header', { class: 'widget-head' }, this.title, this.freshness),
      this.error,
      this.body,
      this.tools,
    );
    this.renderer = null;
    this.shape = null;
    this.widgetData = null;
    this.setDefinition(widget);
    this.showPlaceholder('Waiting for data…');
  }

  setDefinition(widget) {
    this.widget = widget;
    this.el.dataset.widgetId = widget.id || '';
    this.el.dataset.widgetType = widget.widget_type;
    this.title.textContent = widget.title || widget.widget_type;
    this.place(widget.layout);
  }

  place(layout) {
    const { x = 0, y = 0, w = 4, h: height = 4 } = layout || {};
    const style = this.el.style;
    style.setProperty('--x', String(x + 1));
    style.setProperty('--y', String(y + 1));
    style.setProperty('--w', String(w));
    style.setProperty('--h', String(height));
    this.el.dataset.layout = `${x},${y},${w},${height}`;
  }

  showPlaceholder(text) {
    this.dropRenderer();
    clear(this.body).append(h('p', { class: 'widget-placeholder' }, text));
    this.el.dataset.state = 'loading';
    delete this.el.dataset.kind;
  }

  dropRenderer() {
    this.renderer?.dispose?.();
    this.renderer = null;
    this.shape = null;
  }

  /** New WidgetData (normalized); draws its data, or shows its error. */
  setData(widgetData) {
    this.widgetData = widgetData;
    if (widgetData.title && !this.widget.title) this.title.textContent = widgetData.title;
    const { data, error } = widgetData;
    this.error.hidden = !error;
    clear(this.error);
    if (error) {
      const message = typeof error === 'string' ? error : error.message || error.code || 'this widget could not be computed';
      this.error.append(h('span', { class: 'error-message', dir: 'auto' }, message));
      if (error.code) this.error.append(h('span', { class: 'error-code' }, ` (${error.code}${error.field ? `, ${error.field}` : ''})`));
    }
    if (data && typeof data === 'object' && data.kind) {
      const shape = shapeOf(data);
      if (shape !== this.shape) {
        this.dropRenderer();
        clear(this.body);
        this.renderer = bodyFor(data, this.body, this.context);
        this.shape = shape;
      }
      this.el.dataset.kind = data.kind;
      if (this.renderer) {
        this.renderer.draw(data);
      } else {
        clear(this.body).append(h('p', { class: 'widget-placeholder' }, `No renderer for data of kind "${data.kind}"`));
      }
    } else {
      this.dropRenderer();
      clear(this.body);
      if (!error) this.body.append(h('p', { class: 'widget-placeholder' }, 'No data yet'));
      delete this.el.dataset.kind;
    }
    this.el.dataset.state = error ? 'error' : 'ok';
    this.tick();
  }

  /** Redraw with the current data (after a theme or scale change). */
  redraw() {
    const current = this.widgetData;
    this.dropRenderer();
    if (current) this.setData(current);
  }

  tick(now = Date.now()) {
    const data = this.widgetData;
    if (!data) {
      this.freshness.textContent = '';
      return;
    }
    const stamp = data.as_of || data.refreshed_at;
    this.freshness.textContent = `updated ${ago(stamp, now)}`;
    this.freshness.title = `data as of ${formatDateTime(data.as_of)}; refreshed ${formatDateTime(data.refreshed_at)}`;
  }

  destroy() {
    this.dropRenderer();
    this.el.remove();
  }
}
