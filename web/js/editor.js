// Edit mode's pieces: grid layout operations, the widget form generated from a widget type's
// fields, and the dashboard settings form. Nothing here talks to the service except for the
// saved-query list a saved_query field offers.

import { h, clear, append } from './dom.js';
import { dashboards } from './api.js';

export const MAX_ROWS_PER_WIDGET = 24;
export const PERIOD_TYPES = [
  'today',
  'yesterday',
  'last_7_days',
  'last_30_days',
  'last_90_days',
  'this_week',
  'last_week',
  'month_to_date',
  'last_month',
];

// ---- layout ------------------------------------------------------------------------------------

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** Push every widget that overlaps ``moved`` (or one pushed before it) down, so that none overlap. */
export function settle(widgets, moved) {
  const placed = [moved];
  const others = widgets.filter((w) => w !== moved).sort((a, b) => a.layout.y - b.layout.y || a.layout.x - b.layout.x);
  for (const widget of others) {
    for (;;) {
      const hit = placed.filter((p) => overlaps(p.layout, widget.layout));
      if (!hit.length) break;
      widget.layout.y = Math.max(...hit.map((p) => p.layout.y + p.layout.h));
    }
    placed.push(widget);
  }
}

export function clampLayout(layout, columns) {
  const w = Math.min(Math.max(1, Math.round(layout.w)), columns);
  const height = Math.min(Math.max(1, Math.round(layout.h)), MAX_ROWS_PER_WIDGET);
  const x = Math.min(Math.max(0, Math.round(layout.x)), columns - w);
  const y = Math.max(0, Math.round(layout.y));
  return { x, y, w, h: height };
}

/** Move by (dx, dy) cells and/or resize by (dw, dh); returns whether anything changed. */
export function adjust(widgets, widget, { dx = 0, dy = 0, dw = 0, dh = 0 }, columns) {
  const before = JSON.stringify(widget.layout);
  const l = widget.layout;
  widget.layout = clampLayout({ x: l.x + dx, y: l.y + dy, w: l.w + dw, h: l.h + dh }, columns);
  if (dw > 0 && widget.layout.w === l.w && l.x > 0) {
    // Against the right edge a wider widget grows to the left.
    widget.layout = clampLayout({ ...widget.layout, x: l.x - dw, w: l.w + dw }, columns);
  }
  settle(widgets, widget);
  return JSON.stringify(widget.layout) !== before;
}

export function bottomRow(widgets) {
  return widgets.reduce((max, w) => Math.max(max, (w.layout?.y ?? 0) + (w.layout?.h ?? 1)), 0);
}

export function sortByLayout(widgets) {
  return [...widgets].sort((a, b) => a.layout.y - b.layout.y || a.layout.x - b.layout.x);
}

// ---- dialogs -----------------------------------------------------------------------------------

/** A modal dialog; resolves with what ``onSubmit`` returns, or null when cancelled. */
function openDialog({ title, className, build }) {
  return new Promise((resolve) => {
    const content = h('div', { class: 'dialog-content' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const actions = h('div', { class: 'dialog-actions' });
    const heading = h('h2', { class: 'dialog-title' }, title);
    const form = h('form', { class: 'dialog-form', novalidate: true }, heading, content, error, actions);
    const dialog = h('dialog', { class: `dialog ${className || ''}`, 'aria-label': title }, form);
    let settled = false;
    const finish = (value) => {
      if (settled) return;
      settled = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    const api = {
      content,
      actions,
      setTitle: (text) => {
        heading.textContent = text;
        dialog.setAttribute('aria-label', text);
      },
      setError: (text) => {
        error.textContent = text || '';
        error.hidden = !text;
      },
      finish,
      form,
    };
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(null);
    });
    build(api);
    document.body.append(dialog);
    dialog.showModal();
  });
}

function actionButton(label, props = {}) {
  return h('button', { type: 'button', ...props }, label);
}

// ---- fields ------------------------------------------------------------------------------------

class FieldError extends Error {}

const PLACEHOLDERS = {
  filters: '[{"dimension": "country", "op": "in", "values": ["SA", "DE"]}]',
  query: '{"metrics": ["views"], "dimensions": ["country"], "date_range": {"relative": "last_7_days"}}',
  funnel: '{"steps": [{"event_type": "content_view"}, {"event_type": "content_complete"}], "date_range": {"relative": "last_7_days"}}',
  retention: '{"start_event": {"event_type": "user_register"}, "return_event": {"event_type": "content_play"}, "bucket": "week", "periods": 8}',
};

/** "last_30_days" -> "Last 30 days": what a select shows; its value stays the name. */
export function humanize(name) {
  const text = String(name).replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function optionList(items) {
  return items.map((item) =>
    typeof item === 'string' ? { value: item, label: humanize(item) } : { value: item.name ?? item.value, label: item.label || humanize(item.name || item.value) },
  );
}

function selectInput(name, options, value, required) {
  const select = h('select', { name, id: `field-${name}` });
  if (!required) select.append(h('option', { value: '' }, '—'));
  for (const option of options) select.append(h('option', { value: option.value }, option.label));
  if (value !== undefined && value !== null && value !== '') select.value = String(value);
  else if (required && options.length) select.value = options[0].value;
  return select;
}

function checkboxGroup(name, options, values) {
  const chosen = new Set(values || []);
  return h(
    'div',
    { class: 'checkbox-group', id: `field-${name}`, role: 'group' },
    options.map((option) =>
      h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', name, value: option.value, checked: chosen.has(option.value) }), h('span', {}, option.label)),
    ),
  );
}

/** One form control for a widget type field, and how to read its value back. */
function fieldControl(field, value, catalog) {
  const name = field.name;
  const label = field.label || name;
  const required = !!field.required;
  const options = field.options?.length ? optionList(field.options) : null;
  let control;
  let read;
  switch (field.type) {
    case 'metrics':
    case 'dimensions': {
      const list = options || optionList(field.type === 'metrics' ? catalog.metrics : catalog.dimensions);
      control = checkboxGroup(name, list, value);
      read = () => [...control.querySelectorAll('input:checked')].map((input) => input.value);
      break;
    }
    case 'metric':
    case 'dimension': {
      const list = options || optionList(field.type === 'metric' ? catalog.metrics : catalog.dimensions);
      control = selectInput(name, list, value, required);
      read = () => control.value || null;
      break;
    }
    case 'select':
      control = selectInput(name, options || [], value, required);
      read = () => control.value || null;
      break;
    case 'date_range': {
      const current = value && typeof value === 'object' ? value.period_type ?? value.relative : value;
      control = selectInput(name, options || optionList(PERIOD_TYPES), current, required);
      read = () => (control.value ? { period_type: control.value } : null);
      break;
    }
    case 'saved_query': {
      const list = catalog.savedQueries ? catalog.savedQueries.map((q) => ({ value: q.id, label: q.kind ? `${q.name} (${q.kind})` : q.name })) : null;
      if (list) {
        control = selectInput(name, list, value, required);
      } else {
        control = h('input', { type: 'text', name, id: `field-${name}`, value: value ?? '', placeholder: 'saved query id (sq_…)' });
      }
      read = () => control.value.trim() || null;
      break;
    }
    case 'integer': {
      control = h('input', { type: 'number', name, id: `field-${name}`, step: '1', value: value ?? '', min: field.min ?? null, max: field.max ?? null });
      read = () => {
        if (control.value === '') return null;
        const number = Number(control.value);
        if (!Number.isInteger(number)) throw new FieldError(`${label}: a whole number, please`);
        if (field.min != null && number < field.min) throw new FieldError(`${label}: at least ${field.min}`);
        if (field.max != null && number > field.max) throw new FieldError(`${label}: at most ${field.max}`);
        return number;
      };
      break;
    }
    case 'query':
    case 'funnel':
    case 'retention': {
      // An inline definition (an analyticsQuery, funnel or retention body, or query filters): the one
      // place where JSON is written, for what a saved query does not cover.
      const placeholder = name === 'filters' ? PLACEHOLDERS.filters : PLACEHOLDERS[field.type];
      control = h('textarea', { name, id: `field-${name}`, rows: 5, spellcheck: 'false', class: 'code', placeholder });
      control.value = value === undefined || value === null ? '' : JSON.stringify(value, null, 2);
      read = () => {
        if (!control.value.trim()) return null;
        try {
          return JSON.parse(control.value);
        } catch (error) {
          throw new FieldError(`${label}: not valid JSON (${error.message})`);
        }
      };
      break;
    }
    default:
      control = h('input', { type: 'text', name, id: `field-${name}`, dir: 'auto', value: value ?? '' });
      read = () => control.value.trim() || null;
  }
  const wrapper = h(
    'div',
    { class: 'field', dataset: { field: name, fieldType: field.type } },
    h('label', { class: 'field-label', for: `field-${name}` }, label, required ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null),
    control,
    field.description ? h('small', { class: 'field-help' }, field.description) : null,
  );
  const readChecked = () => {
    const result = read();
    const empty = result === null || (Array.isArray(result) && result.length === 0);
    if (required && empty) throw new FieldError(`${label} is required`);
    return empty ? undefined : result;
  };
  return { wrapper, read: readChecked, name };
}

/**
 * Ask for a widget: a new one (``widget`` null: the type picker first) or an existing one to configure.
 * Resolves to {widget_type, title, config} or null.
 */
export function widgetDialog({ widget = null, catalog }) {
  const types = catalog.widgetTypes;
  return openDialog({
    title: widget ? 'Configure widget' : 'Add a widget',
    className: 'widget-dialog',
    build(dialog) {
      const showForm = (type, initial) => {
        const fields = type.fields || [];
        dialog.setTitle(`${initial ? 'Configure' : 'Add'}: ${type.label || type.type}`);
        dialog.setError('');
        const title = h('input', { type: 'text', name: 'title', id: 'field-title', dir: 'auto', maxlength: 200, value: initial?.title ?? type.label ?? '' });
        const controls = fields.map((field) => {
          const current = initial ? initial.config?.[field.name] : field.default;
          return fieldControl(field, current, catalog);
        });
        append(clear(dialog.content), [
          type.description ? h('p', { class: 'type-description' }, type.description) : null,
          h('div', { class: 'field', dataset: { field: 'title' } }, h('label', { class: 'field-label', for: 'field-title' }, 'Title'), title),
          controls.map((c) => c.wrapper),
        ]);
        append(clear(dialog.actions), [
          initial ? null : actionButton('Back', { class: 'secondary', onclick: () => showPicker() }),
          actionButton('Cancel', { class: 'secondary', onclick: () => dialog.finish(null) }),
          h('button', { type: 'submit', class: 'primary', dataset: { action: 'apply-widget' } }, initial ? 'Apply' : 'Add widget'),
        ]);
        dialog.form.onsubmit = (event) => {
          event.preventDefault();
          const config = {};
          try {
            for (const control of controls) {
              const value = control.read();
              if (value !== undefined) config[control.name] = value;
            }
          } catch (error) {
            if (!(error instanceof FieldError)) throw error;
            dialog.setError(error.message);
            return;
          }
          const oneOf = type.one_of || [];
          if (oneOf.length && oneOf.filter((name) => config[name] !== undefined).length !== 1) {
            const labels = oneOf.map((name) => fields.find((f) => f.name === name)?.label || name);
            dialog.setError(`Fill in exactly one of: ${labels.join(', ')}.`);
            return;
          }
          dialog.finish({ widget_type: type.type, title: title.value.trim() || type.label || type.type, config });
        };
        (controls[0]?.wrapper.querySelector('input, select, textarea') || title).focus();
      };
      const showPicker = () => {
        dialog.setTitle('Add a widget');
        dialog.setError('');
        dialog.form.onsubmit = (event) => event.preventDefault();
        append(clear(dialog.content), [
          h(
            'div',
            { class: 'type-picker', role: 'list' },
            types.map((type) =>
              h(
                'button',
                { type: 'button', class: 'type-option', role: 'listitem', dataset: { type: type.type }, onclick: () => showForm(type, null) },
                h('strong', {}, type.label || type.type),
                h('span', {}, type.description || ''),
              ),
            ),
          ),
        ]);
        append(clear(dialog.actions), actionButton('Cancel', { class: 'secondary', onclick: () => dialog.finish(null) }));
      };
      if (widget) {
        const type = types.find((t) => t.type === widget.widget_type);
        if (type) showForm(type, widget);
        else {
          dialog.setError(`The service no longer offers widgets of type "${widget.widget_type}".`);
          append(clear(dialog.actions), actionButton('Close', { onclick: () => dialog.finish(null) }));
        }
      } else {
        showPicker();
      }
    },
  });
}

/** The dashboard's own settings; resolves to {name, description, refresh_interval_seconds, theme} or null. */
export function settingsDialog(current) {
  return openDialog({
    title: 'Dashboard settings',
    className: 'settings-dialog',
    build(dialog) {
      const name = h('input', { type: 'text', id: 'settings-name', dir: 'auto', required: true, maxlength: 200, value: current.name ?? '' });
      const description = h('textarea', { id: 'settings-description', dir: 'auto', rows: 3 });
      description.value = current.description ?? '';
      const refresh = h('input', { type: 'number', id: 'settings-refresh', min: 1, max: 3600, step: 1, value: String(current.refresh_interval_seconds ?? 5) });
      const theme = selectInput('theme', optionList(['light', 'dark']), current.theme || 'light', true);
      theme.id = 'settings-theme';
      const row = (label, control) => h('div', { class: 'field' }, h('label', { class: 'field-label', for: control.id }, label), control);
      dialog.content.append(row('Name', name), row('Description', description), row('Refresh every (seconds)', refresh), row('Theme', theme));
      dialog.actions.append(
        actionButton('Cancel', { class: 'secondary', onclick: () => dialog.finish(null) }),
        h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      );
      dialog.form.onsubmit = (event) => {
        event.preventDefault();
        const seconds = Number(refresh.value);
        if (!name.value.trim()) return dialog.setError('A name is required');
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) return dialog.setError('Refresh: a whole number of seconds from 1 to 3600');
        dialog.finish({ name: name.value.trim(), description: description.value.trim() || null, refresh_interval_seconds: seconds, theme: theme.value });
      };
      name.focus();
    },
  });
}

/** The saved queries a saved_query field may pick from (none when the key may not list them). */
export async function loadSavedQueries() {
  try {
    const answer = await dashboards.savedQueries();
    return answer?.items || [];
  } catch {
    return null;
  }
}
