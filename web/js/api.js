// The REST API as the pages use it, and the API key of this browser tab.
//
// The key lives in sessionStorage only: it is gone when the tab closes, is never written to
// localStorage or a cookie, and so is never sent by the browser on its own.

const KEY_NAME = 'analytics.apiKey';
export const API_BASE = '/api/v1/analytics';

export function getKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_NAME);
}

export function authorization(key = getKey()) {
  return `Bearer ${key}`;
}

/** An answer other than 2xx, with the service's error body: code, message and details (field). */
export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  get field() {
    return this.details && typeof this.details === 'object' ? this.details.field ?? null : null;
  }

  /** The service answers {"error": code, "message", "details"}; {"error": {code, message, details}} too. */
  static fromBody(status, body, statusText = '') {
    let code = `http_${status}`;
    let message = statusText || `the service answered ${status}`;
    let details = null;
    if (body && typeof body === 'object') {
      const error = body.error;
      if (error && typeof error === 'object') {
        code = error.code ?? code;
        message = error.message ?? message;
        details = error.details ?? null;
      } else {
        if (typeof error === 'string') code = error;
        if (typeof body.message === 'string') message = body.message;
        else if (typeof body.detail === 'string') message = body.detail;
        details = body.details ?? null;
      }
    }
    return new ApiError(status, code, message, details);
  }
}

/** One REST call with the tab's key; resolves to the JSON answer (null for 204), or rejects with ApiError. */
export async function api(method, path, body, { key = getKey(), signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = authorization(key);
  const init = { method, headers, cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', `the service could not be reached (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw ApiError.fromBody(response.status, parsed, response.statusText);
  return parsed;
}

export const dashboards = {
  list: (limit = 50, offset = 0) => api('GET', `/dashboards?limit=${limit}&offset=${offset}`),
  get: (id) => api('GET', `/dashboards/${encodeURIComponent(id)}`),
  data: (id) => api('GET', `/dashboards/${encodeURIComponent(id)}/data`),
  create: (body) => api('POST', '/dashboards', body),
  update: (id, body) => api('PUT', `/dashboards/${encodeURIComponent(id)}`, body),
  remove: (id) => api('DELETE', `/dashboards/${encodeURIComponent(id)}`),
  widgetTypes: () => api('GET', '/widget-types'),
  savedQueries: () => api('GET', '/saved-queries?limit=200'),
};
