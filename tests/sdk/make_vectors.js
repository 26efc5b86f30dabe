#!/usr/bin/env node
// Generates signature test vectors with the OFFICIAL Alibaba Cloud Node SDK.
//
// It drives @alicloud/ecs20140526 (and the generic @alicloud/openapi-core
// callApi) against a throw-away HTTP server on 127.0.0.1 and records each
// request exactly as it arrived on the wire: method, raw target, raw headers
// and body. The SDK's clock and nonce generator are pinned so the output is
// reproducible; every connection is redirected to the capture server, so the
// SDK believes it talks to "127.0.0.1:8080" (which is what it signs as host).
//
// Usage:  node make_vectors.js          -> JSON, one object per request
//         node make_vectors.js --cpp    -> C++ initialisers for
//                                          tests/api/signature_test.cc
'use strict';

const http = require('http');
const net = require('net');

const Ecs = require('@alicloud/ecs20140526');
const OpenApi = require('@alicloud/openapi-core');
const Utils = require('@alicloud/openapi-core/dist/utils').default;

const kAccessKeyId = 'LTAI5tTestAccessKeyId';
const kSecret = 'testSecretKey0123456789abcdefXYZ';
const kEndpoint = '127.0.0.1:8080';
const kDate = '2025-03-04T05:06:07Z';

// --- pin the SDK's clock and nonce ----------------------------------------
let nonceCounter = 0;
Utils.getTimestamp = () => kDate;
Utils.getNonce = () => `nonce-${String(++nonceCounter).padStart(4, '0')}`;

// --- capture what the SDK signs ---------------------------------------------
// ACS3: getAuthorization() hashes the canonical request with Utils.hash();
// v1: getRPCSignature() feeds the string-to-sign to crypto.createHmac('sha1').
let lastSigned = null;
const origHash = Utils.hash;
Utils.hash = function (raw, algorithm) {
  if (raw && raw.length > 0 && /^[A-Z]+\n/.test(raw.toString('utf8'))) lastSigned = raw.toString('utf8');
  return origHash.call(this, raw, algorithm);
};
const crypto = require('crypto');
const origCreateHmac = crypto.createHmac;
crypto.createHmac = function (alg, key) {
  const h = origCreateHmac.call(this, alg, key);
  if (alg === 'sha1') {
    const origUpdate = h.update;
    h.update = function (data) { lastSigned = String(data); return origUpdate.apply(this, arguments); };
  }
  return h;
};

// --- capture server ---------------------------------------------------------
const captured = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    captured.push({
      method: req.method,
      target: req.url,
      rawHeaders: req.rawHeaders,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ RequestId: 'vector' }));
  });
});

function redirectAllConnections(port) {
  http.Agent.prototype.createConnection = function (opts, cb) {
    return net.createConnection({ host: '127.0.0.1', port }, cb);
  };
}

function ecsClient(extra) {
  return new Ecs.default(new OpenApi.$OpenApiUtil.Config(Object.assign({
    accessKeyId: kAccessKeyId,
    accessKeySecret: kSecret,
    endpoint: kEndpoint,
    protocol: 'http',
    regionId: 'cn-hangzhou',
  }, extra)));
}

function genericClient(extra) {
  return new OpenApi.default(new OpenApi.$OpenApiUtil.Config(Object.assign({
    accessKeyId: kAccessKeyId,
    accessKeySecret: kSecret,
    endpoint: kEndpoint,
    protocol: 'http',
  }, extra)));
}

const kTrickyName = "my image *~!()' 中文+%&=/?";
const kRuntime = () => new (require('@darabonba/typescript').RuntimeOptions)({ autoretry: false });

async function run() {
  const cases = [];
  const acs3 = ecsClient({});
  const v1 = ecsClient({ signatureAlgorithm: 'v2' });

  const describeImages = () => new Ecs.DescribeImagesRequest({
    regionId: 'cn-hangzhou', imageId: 'm-1,m-2', imageName: kTrickyName,
  });
  const share = () => new Ecs.ModifyImageSharePermissionRequest({
    regionId: 'cn-hangzhou', imageId: 'm-bp1share',
    addAccount: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'],
  });

  cases.push(['Acs3DescribeImagesTrickyName', () => acs3.describeImagesWithOptions(describeImages(), kRuntime())]);
  cases.push(['Acs3ShareElevenAccounts', () => acs3.modifyImageSharePermissionWithOptions(share(), kRuntime())]);
  cases.push(['Acs3FormBody', () => genericClient({}).callApi(
    new OpenApi.$OpenApiUtil.Params({
      action: 'CreateImage', version: '2014-05-26', protocol: 'HTTP', pathname: '/',
      method: 'POST', authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
    }),
    new OpenApi.$OpenApiUtil.OpenApiRequest({
      query: { RegionId: 'cn-hangzhou' },
      body: { ImageName: 'body image 中文*', Description: "a+b=c&d (e)!" },
    }),
    kRuntime())]);
  cases.push(['Acs3NativeGet', () => genericClient({}).callApi(
    new OpenApi.$OpenApiUtil.Params({
      action: 'GetPermissions', version: 'v1', protocol: 'HTTP',
      pathname: '/v1/images/m-bp1share/permissions', method: 'GET', authType: 'AK',
      style: 'ROA', reqBodyType: 'json', bodyType: 'json',
    }),
    new OpenApi.$OpenApiUtil.OpenApiRequest({ query: { as_of_seq: '42' } }),
    kRuntime())]);
  cases.push(['V1DescribeImagesTrickyName', () => v1.describeImagesWithOptions(describeImages(), kRuntime())]);
  cases.push(['V1ShareElevenAccounts', () => v1.modifyImageSharePermissionWithOptions(share(), kRuntime())]);
  cases.push(['V1FormBody', () => genericClient({ signatureAlgorithm: 'v2' }).callApi(
    new OpenApi.$OpenApiUtil.Params({
      action: 'CreateImage', version: '2014-05-26', protocol: 'HTTP', pathname: '/',
      method: 'POST', authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
    }),
    new OpenApi.$OpenApiUtil.OpenApiRequest({
      query: { RegionId: 'cn-hangzhou' },
      body: { ImageName: 'body image 中文*', Description: "a+b=c&d (e)!" },
    }),
    kRuntime())]);

  const out = [];
  for (const [name, call] of cases) {
    const before = captured.length;
    await call();
    if (captured.length !== before + 1) throw new Error(`${name}: expected one request`);
    out.push(Object.assign({ name }, captured[captured.length - 1], { signed: lastSigned }));
    lastSigned = null;
  }

  // An old-style GET (what the aliyun CLI / older SDKs send), signed with the
  // SDK's own exported helper OpenApiUtil.getRPCSignature.
  const getParams = {
    Action: 'DescribeImages', Version: '2014-05-26', Format: 'JSON',
    AccessKeyId: kAccessKeyId, SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0',
    SignatureNonce: 'nonce-get-0001', Timestamp: kDate, RegionId: 'cn-hangzhou',
    ImageName: kTrickyName,
  };
  lastSigned = null;
  getParams.Signature = OpenApi.OpenApiUtil.getRPCSignature(getParams, 'GET', kSecret);
  out.push({ signed: lastSigned,
    name: 'V1GetFromHelper', method: 'GET',
    target: '/?' + require('querystring').stringify(getParams),
    rawHeaders: ['host', kEndpoint], body: '',
  });
  return out;
}

function cppString(s) {
  // Plain escaped narrow literal; UTF-8 bytes are emitted as \x escapes.
  let r = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22) r += '\\"';
    else if (b === 0x5c) r += '\\\\';
    else if (b === 0x0a) r += '\\n';
    else if (b >= 0x20 && b < 0x7f) r += String.fromCharCode(b);
    else r += '\\x' + b.toString(16).padStart(2, '0') + '""';
  }
  return r + '"';
}

function emitCpp(vectors) {
  const sdkVersion = require('@alicloud/openapi-core/package.json').version;
  const ecsVersion = require('@alicloud/ecs20140526/package.json').version;
  const lines = [];
  lines.push(`// Generated by tests/sdk/make_vectors.js with @alicloud/openapi-core ${sdkVersion},`);
  lines.push(`// @alicloud/ecs20140526 ${ecsVersion}, node ${process.versions.node}.`);
  lines.push(`// AccessKeyId ${cppString(kAccessKeyId)}, secret ${cppString(kSecret)}, date ${kDate}.`);
  for (const v of vectors) {
    const q = v.target.indexOf('?');
    const path = q < 0 ? v.target : v.target.slice(0, q);
    const query = q < 0 ? '' : v.target.slice(q + 1);
    lines.push(`const WireRequest k${v.name} = {`);
    lines.push(`    ${cppString(v.method)},`);
    lines.push(`    ${cppString(path)},`);
    lines.push(`    ${cppString(query)},`);
    lines.push('    {');
    for (let i = 0; i < v.rawHeaders.length; i += 2) {
      const name = v.rawHeaders[i].toLowerCase();
      if (name === 'user-agent' || name === 'connection') continue;  // not signed, varies
      lines.push(`        {${cppString(name)}, ${cppString(v.rawHeaders[i + 1])}},`);
    }
    lines.push('    },');
    lines.push(`    ${cppString(v.body)},`);
    lines.push('};');
    lines.push(`// What the SDK signed: ${v.name.startsWith('Acs3') ? 'canonical request' : 'string to sign'}.`);
    lines.push(`const char k${v.name}Signed[] =`);
    const parts = v.signed.split('\n');
    parts.forEach((p, i) => lines.push(`    ${cppString(i + 1 < parts.length ? p + '\n' : p)}${i + 1 < parts.length ? '' : ';'}`));
  }
  return lines.join('\n');
}

server.listen(0, '127.0.0.1', async () => {
  redirectAllConnections(server.address().port);
  try {
    const vectors = await run();
    if (process.argv.includes('--cpp')) console.log(emitCpp(vectors));
    else console.log(JSON.stringify(vectors, null, 1));
  } catch (e) {
    console.error(e);
    process.exitCode = 1;
  } finally {
    server.close();
  }
});
