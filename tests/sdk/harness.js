// Test harness for the SDK conformance suite (node --test).
//
// - startServer(): runs the shareledger binary (env SHARELEDGER_BIN, default
//   ../../build/shareledger) on 127.0.0.1:0 with a fresh temp data dir and a
//   random admin token; parses "listening on http://127.0.0.1:PORT" from stdout.
//   server.stop() sends SIGTERM (SIGKILL after a grace period) and removes the dir.
// - server.createAccount(site) / server.setEncryptRole(id, bool): admin routes.
// - ecs(server, account, mode): the UNMODIFIED official ECS SDK client
//   (@alicloud/ecs20140526), mode 'acs3' (default ACS3-HMAC-SHA256) or 'v1'
//   (signatureAlgorithm 'v2' = HMAC-SHA1 v1). Methods are the SDK's own:
//   `await c.describeImages({regionId: ...})` builds `new DescribeImagesRequest(...)`,
//   calls `describeImagesWithOptions` and returns the cast response body.
//   `c.raw(action, query)` sends the same request through the same client's
//   `callApi` and returns the raw JSON {statusCode, headers, body} (for checks on
//   wire shapes that the SDK's model cast would hide).
// - rpc(server, account, mode): generic @alicloud/openapi-core client for
//   ResourceSharing 2020-01-10 / ResourceManager 2020-03-31 (RPC, POST, query).
// - native(server, account, method, path, query): a tiny ACS3 signer for the
//   native /v1 API (SPEC §3.2, docs/SDK_NOTES.md), raw status/headers/body.
//
// Every wait is bounded: server start (20 s), stop (10 s), HTTP (15 s).
'use strict';

const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const assert = require('assert/strict');
const { HTTP_TIMEOUT_MS, httpRequest, rfc3986 } = require('../support/http');

const Ecs = require('@alicloud/ecs20140526');
const OpenApi = require('@alicloud/openapi-core');
const { RuntimeOptions } = require('@darabonba/typescript');

const BIN = process.env.SHARELEDGER_BIN
  ? path.resolve(process.env.SHARELEDGER_BIN)
  : path.resolve(__dirname, '../../build/shareledger');

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

const REGION = 'cn-hangzhou';
const OTHER_REGION = 'cn-shanghai';

// Child processes still running (-> their data dir): killed and removed on exit no matter what.
const live = new Map();
function killAll() {
  for (const [child, dir] of live) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
  live.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { killAll(); process.exit(128 + (signal === 'SIGINT' ? 2 : 15)); });
}

// ---- server lifecycle ---------------------------------------------------------

class Server {
  constructor(child, dir, port, adminToken, log) {
    this.child = child;
    this.dir = dir;
    this.port = port;
    this.adminToken = adminToken;
    this.endpoint = `127.0.0.1:${port}`;
    this.log = log;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async admin(method, target, body) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${this.adminToken}` };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    return httpRequest(this.port, method, target, headers, payload);
  }

  async createAccount(site = 'cn') {
    const r = await this.admin('POST', '/v1/admin/accounts', { site });
    assert.equal(r.status, 200, `create account: ${r.status} ${r.text}`);
    const a = r.json;
    assert.match(a.account_id, /^\d{16}$/);
    assert.match(a.access_key_id, /^LTAI[A-Za-z0-9]{20}$/);
    assert.equal(typeof a.access_key_secret, 'string');
    return { id: a.account_id, keyId: a.access_key_id, secret: a.access_key_secret, site };
  }

  async createAccounts(n, site = 'cn') {
    const out = [];
    for (let i = 0; i < n; i += 10) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 10); ++j) batch.push(this.createAccount(site));
      out.push(...(await Promise.all(batch)));
    }
    return out;
  }

  async setEncryptRole(accountId, authorized) {
    const r = await this.admin('POST', `/v1/admin/accounts/${accountId}/encrypt-share-role`, { authorized });
    assert.equal(r.status, 200, `encrypt-share-role: ${r.status} ${r.text}`);
    return r.json;
  }

  // SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; removes the data dir.
  // Returns {code, signal, forced}.
  async stop() {
    let result = { code: null, signal: null, forced: false };
    if (live.has(this.child)) {
      this.child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS); });
      const exit = await Promise.race([this.exited, timeout]);
      clearTimeout(timer);
      if (exit) {
        result = Object.assign(exit, { forced: false });
      } else {
        this.child.kill('SIGKILL');
        result = Object.assign(await this.exited, { forced: true });
      }
      live.delete(this.child);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    return result;
  }
}

// options: {imageQuota, imageBuildMs, extraArgs[]}
async function startServer(options = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`shareledger binary not found at ${BIN} (set SHARELEDGER_BIN)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shareledger-sdk-'));
  const adminToken = crypto.randomBytes(24).toString('hex');
  const args = ['serve', '--data', path.join(dir, 'db'), '--listen', '127.0.0.1:0', '--admin-token', adminToken];
  if (options.imageQuota !== undefined) args.push('--image-quota', String(options.imageQuota));
  if (options.imageBuildMs !== undefined) args.push('--image-build-ms', String(options.imageBuildMs));
  if (options.extraArgs) args.push(...options.extraArgs);
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, dir);
  let log = '';
  const keep = (chunk) => { log = (log + chunk.toString('utf8')).slice(-20000); };
  child.stderr.on('data', keep);
  let stdout = '';
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.stdout.on('data', (chunk) => {
        keep(chunk);
        stdout += chunk.toString('utf8');
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      child.once('error', (e) => { clearTimeout(timer); reject(e); });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server exited before listening (code ${code}, signal ${signal})`));
      });
    });
    return new Server(child, dir, port, adminToken, () => log);
  } catch (e) {
    child.kill('SIGKILL');
    live.delete(child);
    fs.rmSync(dir, { recursive: true, force: true });
    e.message += `\n--- server output ---\n${log}`;
    throw e;
  }
}

// ---- SDK clients ----------------------------------------------------------------

const MODES = ['acs3', 'v1'];

function sdkConfig(server, account, mode, extra) {
  const config = {
    accessKeyId: account.keyId,
    accessKeySecret: account.secret,
    endpoint: server.endpoint,
    protocol: 'http',
    regionId: REGION,
    readTimeout: HTTP_TIMEOUT_MS,
    connectTimeout: 5000,
  };
  if (mode === 'v1') config.signatureAlgorithm = 'v2';
  else if (mode !== 'acs3') throw new Error(`unknown signing mode ${mode}`);
  return new OpenApi.$OpenApiUtil.Config(Object.assign(config, extra));
}

function runtime() {
  return new RuntimeOptions({ autoretry: false, readTimeout: HTTP_TIMEOUT_MS, connectTimeout: 5000 });
}

function rpcParams(action, version) {
  return new OpenApi.$OpenApiUtil.Params({
    action, version, protocol: 'HTTP', pathname: '/', method: 'POST', authType: 'AK',
    style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
  });
}

// body (optional): parameters sent as an application/x-www-form-urlencoded body
// (the SDK streams it chunked and signs it with the query).
async function rawCall(client, action, version, query, body) {
  const fields = { query: OpenApi.OpenApiUtil.query(query || {}) };
  if (body) fields.body = OpenApi.OpenApiUtil.query(body);
  return client.callApi(rpcParams(action, version), new OpenApi.$OpenApiUtil.OpenApiRequest(fields), runtime());
}

// The official ECS client. `c.fooBar(params)` == SDK's fooBarWithOptions(new FooBarRequest(params)).body.
function ecs(server, account, mode, extra) {
  const client = new Ecs.default(sdkConfig(server, account, mode, extra));
  const wrapper = {
    client,
    account,
    mode,
    raw: (action, query) => rawCall(client, action, '2014-05-26', query),
  };
  return new Proxy(wrapper, {
    get(target, name) {
      if (name in target || typeof name !== 'string') return target[name];
      const requestClass = Ecs[name.charAt(0).toUpperCase() + name.slice(1) + 'Request'];
      const method = client[name + 'WithOptions'];
      if (!requestClass || typeof method !== 'function') return undefined;
      return async (params) => (await method.call(client, new requestClass(params || {}), runtime())).body;
    },
  });
}

// Generic openapi-core client for ResourceSharing / ResourceManager (no product SDK published).
const SHARING = '2020-01-10';
const MANAGER = '2020-03-31';
function rpc(server, account, mode, extra) {
  const client = new OpenApi.default(sdkConfig(server, account, mode, extra));
  return {
    client,
    account,
    call: async (action, version, query) => (await rawCall(client, action, version, query)).body,
    raw: (action, version, query, body) => rawCall(client, action, version, query, body),
    sharing: async (action, query) => (await rawCall(client, action, SHARING, query)).body,
    manager: async (action, query) => (await rawCall(client, action, MANAGER, query)).body,
  };
}

// ---- native API signer (ACS3 over the request path) -------------------------------

// The canonical URI: the request path with '+' and '*' percent-encoded and '~' left as is (RFC 3986).
function canonicalUri(p) {
  return p.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/g, '~');
}

function acs3Headers(account, host, method, pathname, query, body) {
  const payloadHash = crypto.createHash('sha256').update(body || '').digest('hex');
  const headers = {
    host,
    'x-acs-date': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'x-acs-signature-nonce': crypto.randomBytes(32).toString('hex'),
    'x-acs-content-sha256': payloadHash,
  };
  const entries = Object.entries(query || {}).map(([k, v]) => [rfc3986(k), rfc3986(String(v))]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const canonicalQuery = entries.map(([k, v]) => `${k}=${v}`).join('&');
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [method, canonicalUri(pathname), canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const stringToSign = 'ACS3-HMAC-SHA256\n' + crypto.createHash('sha256').update(canonicalRequest).digest('hex');
  const signature = crypto.createHmac('sha256', account.secret).update(stringToSign).digest('hex');
  headers.authorization = `ACS3-HMAC-SHA256 Credential=${account.keyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return { headers, canonicalQuery };
}

// A signed native request: {status, headers, text, json}.
async function native(server, account, method, pathname, query) {
  const { headers, canonicalQuery } = acs3Headers(account, server.endpoint, method, pathname, query, '');
  const target = canonicalQuery ? `${pathname}?${canonicalQuery}` : pathname;
  return httpRequest(server.port, method, target, headers);
}

// ---- assertions and small helpers -----------------------------------------------

// The SDK must throw its own error class carrying the server's status and Code.
async function expectError(promise, statusCode, code, messageIncludes) {
  let error = null;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${statusCode} ${code}, but the call succeeded`);
  assert.equal(error.code, code, `expected code ${code}, got ${error.code} (${error.message})`);
  assert.equal(error.statusCode, statusCode, `expected status ${statusCode} for ${code}, got ${error.statusCode}`);
  const expectedClass = statusCode >= 500 ? OpenApi.ServerError : OpenApi.ClientError;
  if (!code.includes('Throttling')) {
    assert.ok(error instanceof expectedClass, `${code}: SDK threw ${error.constructor.name}, not ${expectedClass.name}`);
  }
  assert.ok(error.data && typeof error.data === 'object', `${code}: error has no parsed JSON body`);
  assert.equal(error.data.Code, code);
  assert.match(String(error.data.RequestId || ''), /.+/, `${code}: error body has no RequestId`);
  assert.equal(typeof error.data.Message, 'string');
  for (const key of ['RequestId', 'HostId', 'Code', 'Message', 'Recommend']) {
    assert.ok(key in error.data, `${code}: error body lacks ${key}: ${JSON.stringify(error.data)}`);
  }
  if (messageIncludes) assert.ok(error.data.Message.includes(messageIncludes), `${code}: message "${error.data.Message}" does not name ${messageIncludes}`);
  return error;
}

// A 16-digit id that is certainly not an account on a fresh server... unless
// the generator ever produced it; the tests check with the admin where it matters.
function unknownAccountId() {
  let s = '9';
  while (s.length < 16) s += String(crypto.randomInt(10));
  return s;
}

function randomAlnum(n, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789') {
  let s = '';
  for (let i = 0; i < n; ++i) s += alphabet[crypto.randomInt(alphabet.length)];
  return s;
}

const SHARED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

module.exports = {
  BIN, REGION, OTHER_REGION, MODES, SHARING, MANAGER, SHARED_TIME,
  startServer, ecs, rpc, native, httpRequest, acs3Headers, rfc3986,
  expectError, unknownAccountId, randomAlnum, Ecs, OpenApi,
};
