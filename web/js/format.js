// How numbers, durations, times and table cells are written on the page.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A number in its unit: count, per_second, seconds, ms, ratio (0..1) or percent (0..100). */
export function formatValue(value, unit = 'count', { short = false } = {}) {
  if (value === null || value === undefined) return '—';
  if (!isNumber(value)) return String(value);
  switch (unit) {
    case 'ratio':
      return percent.format(value);
    case 'percent':
      // Already in percent (a resource's use), unlike a ratio.
      return `${decimal.format(value)}%`;
    case 'seconds':
      return formatDuration(value);
    case 'ms':
      return formatDuration(value / 1000);
    case 'per_second':
      return `${decimal.format(value)}/s`;
    default:
      if (short && Math.abs(value) >= 10000) return compact.format(value);
      return Number.isInteger(value) ? integer.format(value) : decimal.format(value);
  }
}

export function formatDuration(seconds) {
  if (!isNumber(seconds)) return '—';
  const sign = seconds < 0 ? '-' : '';
  let s = Math.abs(seconds);
  if (s === 0) return '0 s';
  if (s < 1) return `${sign}${decimal.format(s * 1000)} ms`;
  if (s < 60) return `${sign}${decimal.format(s)} s`;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s = Math.round(s - m * 60);
  return h ? `${sign}${h} h ${m} min` : `${sign}${m} min ${s} s`;
}

export function formatChange(changePercent) {
  if (!isNumber(changePercent)) return '';
  const arrow = changePercent > 0 ? '▲' : changePercent < 0 ? '▼' : '■';
  return `${arrow} ${decimal.format(Math.abs(changePercent))}%`;
}

export function formatDateTime(iso) {
  const date = parseTime(iso);
  return date ? dateTime.format(date) : '—';
}

export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "3 s ago", "5 min ago": how long before ``now`` the time ``iso`` was. */
export function ago(iso, now = Date.now()) {
  const date = parseTime(iso);
  if (!date) return 'never';
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `on ${dateOnly.format(date)}`;
}

/** A table cell by its column type (a "percent" column holds ratios, 0..1). */
export function formatCell(value, type) {
  if (value === null || value === undefined) return '—';
  switch (type) {
    case 'integer':
      return isNumber(value) ? integer.format(value) : String(value);
    case 'decimal':
      return isNumber(value) ? decimal.format(value) : String(value);
    case 'percent':
      return isNumber(value) ? percent.format(value) : String(value);
    case 'duration':
      return formatDuration(value);
    case 'date': {
      const date = parseTime(value);
      return date && typeof value === 'string' && value.length > 10 ? dateOnly.format(date) : String(value);
    }
    case 'datetime':
      return formatDateTime(value);
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

export const NUMERIC_COLUMN_TYPES = new Set(['integer', 'decimal', 'percent', 'duration']);
