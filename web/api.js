// The JSON API of the server (docs/http.md): fetch with the session's
// CSRF token on every state-changing request, and errors as ApiError
// carrying the server's {error, code, status} body. request() is that
// fetch for any CSRF header (the control UI's admin.js uses it too).

let csrf = null;

export function setCsrf(token) {
  csrf = token || null;
}

export class ApiError extends Error {
  constructor(status, body, path) {
    const text = body && typeof body === 'object' && body.error
      ? body.error
      : (typeof body === 'string' && body) || `HTTP ${status}`;
    super(text);
    this.name = 'ApiError';
    this.status = status;
    this.code = body && typeof body === 'object' ? body.code ?? null : null;
    this.body = body;
    this.path = path;
  }

  // A line for the page: the message, the HTTP status and the TP code.
  describe() {
    if (this.status === 0) {
      return this.message;
    }
    const code = this.code !== null && this.code !== undefined ? `, TP code ${this.code}` : '';
    return `${this.message} (${this.status}${code})`;
  }
}

// One JSON request: the body (if any) as JSON, csrfToken in the header
// csrfHeader on all but GET and HEAD, cache as fetch's option (if given).
// Answers the parsed body (the text if it is not JSON, null if empty);
// throws ApiError for a status that is not 2xx, with status 0 when the
// server cannot be reached.
export async function request(method, path, body, { csrfHeader, csrfToken, cache } = {}) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (cache !== undefined) {
    opts.cache = cache;
  }
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (csrfHeader && csrfToken && method !== 'GET' && method !== 'HEAD') {
    opts.headers[csrfHeader] = csrfToken;
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new ApiError(0, { error: `cannot reach the server (${err.message})` }, path);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    throw new ApiError(res.status, data, path);
  }
  return data;
}

// Paths are relative ("api/game"), so the page also works under a prefix.
export function api(method, path, body) {
  return request(method, path, body, { csrfHeader: 'X-TP-CSRF', csrfToken: csrf });
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const del = (path) => api('DELETE', path);
