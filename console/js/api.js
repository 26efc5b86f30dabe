// The console's only way to the server: the native API (SPEC §3.2) and the
// feed (§3.3), authenticated as the server verifies them (api/signature.cc):
//   admin    Authorization: Bearer <token>; the feed takes ?access_token=
//            because browsers cannot set headers on a WebSocket.
//   account  ACS3-HMAC-SHA256 over the request (canonical URI = the path),
//            signed here with WebCrypto; the feed URL is signed with the
//            HMAC-SHA1 v1 scheme, whose parameters travel in the query.
// Credentials live in this module's memory only: never in storage, cookies or
// the URL bar.
const enc = new TextEncoder();
let credentials = null;  // {kind:'admin', token} | {kind:'key', id, secret}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export function login(c) { credentials = c; }
export function logout() { credentials = null; }
export function isAdmin() { return credentials?.kind === 'admin'; }
export function loggedIn() { return credentials !== null; }
export function principal() {
  if (!credentials) return '';
  return credentials.kind === 'admin' ? 'admin' : credentials.id;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest('SHA-256', enc.encode(text)));
}

async function hmac(hash, key, text) {
  const k = await crypto.subtle.importKey('raw', enc.encode(key), { name: 'HMAC', hash }, false, ['sign']);
  return crypto.subtle.sign('HMAC', k, enc.encode(text));
}

// RFC 3986: everything but A-Z a-z 0-9 - _ . ~ is escaped, hex upper-case.
export function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// Sorted bytewise by encoded key, then encoded value (api/signature.cc canonical_query).
export function canonicalQuery(params) {
  const pairs = Object.entries(params).map(([k, v]) => [rfc3986(k), rfc3986(String(v))]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

// The SDK's path transform, mirrored by the server's canonical_uri().
function canonicalUri(path) {
  return path.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/g, '~');
}

function timestamp() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function nonce() {
  return crypto.randomUUID().replace(/-/g, '');
}

// ACS3 headers for a request to this origin. Host is signed as the browser
// sends it (location.host); fetch adds no content-type to a body-less GET.
export async function acs3Headers(method, path, query, body, id, secret) {
  const bodyHash = await sha256Hex(body);
  const signed = {
    host: location.host,
    'x-acs-content-sha256': bodyHash,
    'x-acs-date': timestamp(),
    'x-acs-signature-nonce': nonce(),
  };
  const names = Object.keys(signed).sort();
  const canonical = [method, canonicalUri(path), canonicalQuery(query),
    names.map((n) => `${n}:${signed[n]}\n`).join(''), names.join(';'), bodyHash].join('\n');
  const toSign = 'ACS3-HMAC-SHA256\n' + (await sha256Hex(canonical));
  const signature = hex(await hmac('SHA-256', secret, toSign));
  const headers = { ...signed };
  delete headers.host;  // the browser sets it
  headers.authorization = `ACS3-HMAC-SHA256 Credential=${id},SignedHeaders=${names.join(';')},Signature=${signature}`;
  return headers;
}

// The v1 (HMAC-SHA1) signed query for a GET of any path: the string to sign
// names no path (GET&%2F&...), so it signs the WebSocket URL too.
export async function v1Query(params, id, secret) {
  const all = { ...params, AccessKeyId: id, SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0',
    SignatureNonce: nonce(), Timestamp: timestamp(), Format: 'JSON' };
  const toSign = 'GET&%2F&' + rfc3986(canonicalQuery(all));
  const mac = new Uint8Array(await hmac('SHA-1', secret + '&', toSign));
  const signature = btoa(String.fromCharCode(...mac));
  return canonicalQuery(all) + '&Signature=' + rfc3986(signature);
}

function clean(query) {
  const out = {};
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') out[k] = v;
  return out;
}

// GET path?query with the session's credentials; resolves to the Response.
export async function request(path, query = {}) {
  if (!credentials) throw new ApiError(401, 'NotLoggedIn', 'log in first');
  const q = clean(query);
  const qs = canonicalQuery(q);
  const headers = credentials.kind === 'admin'
    ? { authorization: `Bearer ${credentials.token}` }
    : await acs3Headers('GET', path, q, '', credentials.id, credentials.secret);
  const res = await fetch(qs ? `${path}?${qs}` : path, { headers, cache: 'no-store' });
  if (!res.ok) {
    let body = {};
    try { body = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, body.code || 'HttpError', body.message || res.statusText);
  }
  return res;
}

export async function getJson(path, query) {
  return (await request(path, query)).json();
}

export async function getNdjson(path, query) {
  const text = await (await request(path, query)).text();
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

// The authenticated WebSocket URL of the feed.
export async function feedUrl() {
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/feed`;
  if (credentials.kind === 'admin') return `${base}?access_token=${rfc3986(credentials.token)}`;
  return `${base}?${await v1Query({}, credentials.id, credentials.secret)}`;
}
