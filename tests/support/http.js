// Plain HTTP for the node tests (the SDK harness, the console and tail tests'
// server): one request to 127.0.0.1, its body read whole. Node built-ins only,
// so the console tests need none of the SDK packages.
'use strict';

const http = require('http');

const HTTP_TIMEOUT_MS = 15000;

// RFC 3986 percent-encoding: encodeURIComponent leaves !'()* unencoded.
function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// {status, headers, text, json}; json is null when the body is not one JSON value (NDJSON, text).
function httpRequest(port, method, target, headers = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (_) { /* NDJSON or not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(HTTP_TIMEOUT_MS, () => req.destroy(new Error(`HTTP ${method} ${target}: timeout`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

module.exports = { HTTP_TIMEOUT_MS, httpRequest, rfc3986 };
