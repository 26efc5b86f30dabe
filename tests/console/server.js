// A shareledger server for the console tests, and the writes they make.
// - Server.start(): `shareledger serve --demo` (env SHARELEDGER_BIN, default
//   ../../build/shareledger) on 127.0.0.1 (an ephemeral port the first time,
//   the same port after restart()), a temp data dir and a random admin token.
//   Parses the admin token, the demo credentials and the port from stdout.
// - stop() sends SIGTERM (SIGKILL after 10 s); restart() = stop + start on
//   the same data dir and port.
// - ecs(account, action, params): an ECS RPC call signed with HMAC-SHA1 v1
//   (SPEC §3.1), all parameters in the query; resolves {status, seq, body}.
// Every wait is bounded.
'use strict';

const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { httpRequest, rfc3986 } = require('../support/http');

const BIN = path.resolve(process.env.SHARELEDGER_BIN || path.join(__dirname, '../../build/shareledger'));
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

// A response with the seq header the native API sets, as a number (0 when absent).
async function request(port, method, target, headers = {}, body = '') {
  const res = await httpRequest(port, method, target, headers, body);
  return { ...res, seq: Number(res.headers['x-shareledger-seq'] || 0) };
}

class Server {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shareledger-console-'));
    this.token = crypto.randomBytes(18).toString('base64url');
    this.port = 0;
    this.accounts = [];  // {id, site, key, secret}
    this.log = '';
  }

  async start() {
    if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (set SHARELEDGER_BIN)`);
    const child = spawn(BIN, ['serve', '--data', this.dir, '--listen', `127.0.0.1:${this.port}`, '--demo',
      '--admin-token', this.token, '--heartbeat-ms', '1000',
      // The default SCHED_IDLE feed would wait for a spare core; CI runs other jobs beside this test.
      '--feed-priority', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (d) => { this.log += d; });
    let out = '';
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in ${START_TIMEOUT_MS} ms:\n${out}\n${this.log}`)),
        START_TIMEOUT_MS);
      child.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) {
          clearTimeout(timer);
          this.port = Number(m[1]);
          resolve();
        }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${out}\n${this.log}`)); });
    });
    this.accounts = [...out.matchAll(/^ {2}(\d{16}) (cn|intl) (LTAI\w+) (\w+)$/gm)]
      .map(([, id, site, key, secret]) => ({ id, site, key, secret }));
    this.base = `http://127.0.0.1:${this.port}`;
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async destroy() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  admin(method, target, body = '') {
    return request(this.port, method, target, { authorization: `Bearer ${this.token}` }, body);
  }

  // An ECS 2014-05-26 action as `account`, v1-signed (POST, parameters in the query).
  async ecs(account, action, params) {
    const all = { ...params, Action: action, Version: '2014-05-26', Format: 'JSON', AccessKeyId: account.key,
      SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0', SignatureNonce: crypto.randomUUID(),
      Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
    const query = Object.keys(all).sort().map((k) => `${rfc3986(k)}=${rfc3986(String(all[k]))}`).join('&');
    const toSign = `POST&%2F&${rfc3986(query)}`;
    const signature = crypto.createHmac('sha1', `${account.secret}&`).update(toSign).digest('base64');
    const res = await request(this.port, 'POST', `/?${query}&Signature=${rfc3986(signature)}`);
    if (res.status !== 200) throw new Error(`${action}: ${res.status} ${res.text}`);
    return res;
  }
}

module.exports = { Server, request };
