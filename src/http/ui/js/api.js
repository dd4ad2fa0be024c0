// The UI's one door to the server. Every call goes to the public /api/v1, as any
// program's would: the browser sends the httpOnly session cookie, and every call that
// changes state carries the session's CSRF token in X-CSRF-Token. There is no private
// endpoint; what the server refuses, the UI shows.

// The API's roles, most powerful first (what a role may do is the server's rule).
export const ROLES = ['owner', 'admin', 'member', 'viewer', 'auditor'];

let csrfToken = null;
const signedOutListeners = [];

export function setCsrfToken(token) {
  csrfToken = token;
}

// Called when the server says the session is over (401), wherever that happens.
export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

// A refusal from the server, from its application/problem+json body.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The server answered ${status}`);
    this.status = status;
    this.code = problem.code || `http-${status}`;
    this.problem = problem;
    this.retryAfter = null;
  }
}

function isUnsafe(method) {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method);
}

function headersFor(method, extra) {
  const headers = new Headers(extra || {});
  if (isUnsafe(method) && csrfToken) headers.set('X-CSRF-Token', csrfToken);
  return headers;
}

// One path segment of a vault path or an id, escaped for a URL.
export function segments(path) {
  return path.split('/').filter(Boolean).map(encodeURIComponent).join('/');
}

export function url(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const tail = params.toString();
  return `/api/v1${path}${tail ? `?${tail}` : ''}`;
}

// A 401 for the session itself (not a wrong password typed to confirm an action).
function endsSession(error) {
  return error.status === 401 && error.code === 'unauthenticated';
}

async function problemOf(response) {
  let problem = { title: response.statusText };
  try {
    const text = await response.text();
    problem = text ? JSON.parse(text) : problem;
  } catch {
    // Not JSON (a proxy's page): keep the status text.
  }
  const error = new ApiError(response.status, problem);
  error.retryAfter = response.headers.get('retry-after');
  if (endsSession(error)) signedOutListeners.forEach((listener) => listener(error));
  return error;
}

// Calls the API; resolves to { data, etag, response } or throws an ApiError.
export async function call(method, path, options = {}) {
  const headers = headersFor(method, options.headers);
  let body = options.body;
  if (options.json !== undefined) {
    headers.set('Content-Type', options.contentType || 'application/json');
    body = JSON.stringify(options.json);
  }
  const response = await fetch(url(path, options.query), {
    method,
    headers,
    body,
    credentials: 'same-origin',
    signal: options.signal,
  });
  if (!response.ok) throw await problemOf(response);
  const type = response.headers.get('content-type') || '';
  const data = response.status === 204 ? null
    : type.includes('json') && !options.asBlob ? await response.json() : await response.blob();
  return { data, etag: response.headers.get('etag'), response };
}

export const get = async (path, query) => (await call('GET', path, { query })).data;
export const post = async (path, json, query) => (await call('POST', path, { json, query })).data;
export const patch = async (path, json) => (await call('PATCH', path, { json })).data;
export const del = async (path, headers) => (await call('DELETE', path, { headers })).data;

// Uploads one file with progress (fetch reports none for uploads, XMLHttpRequest does).
// Returns { done: Promise<entry>, abort() }.
export function upload(tenant, path, file, onProgress, headers = {}) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('PUT', url(`/tenants/${tenant}/files/${segments(path)}`));
    xhr.setRequestHeader('X-CSRF-Token', csrfToken || '');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    };
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || '{}');
      } catch {
        body = { title: xhr.statusText };
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const error = new ApiError(xhr.status, body);
      if (endsSession(error)) signedOutListeners.forEach((listener) => listener(error));
      reject(error);
    };
    xhr.onerror = () => reject(new ApiError(0, { title: 'The connection failed' }));
    xhr.onabort = () => reject(new ApiError(0, { code: 'cancelled', title: 'Cancelled' }));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

// Names for the actors the audit trail and records name (`user:<id>`), for those who may
// read the member list; others see the ids.
export async function actorNames(tenant, allowed) {
  if (!allowed) return new Map();
  const { members } = await get(`/tenants/${tenant}/members`);
  return new Map(members.map((m) => [`user:${m.user_id}`, m.name || m.email]));
}

// The address of a file's bytes (a plain link downloads it: the server sends it as an
// attachment).
export function fileUrl(tenant, path) {
  return url(`/tenants/${tenant}/files/${segments(path)}`);
}
