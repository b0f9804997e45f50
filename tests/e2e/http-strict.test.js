'use strict';
// Strict HTTP/1.1 (RFC 9112) on raw sockets: every request a lenient reader
// would take differently from a front proxy (bare LF or CR, folded lines, a
// blank before a colon, unknown versions, Host rules, transfer codings,
// chunk framing) gets its status, a JSON error and Connection: close; the
// connection closes; the provider receives neither it nor a request sent
// behind it; and the gateway keeps serving. The forms clients really send
// (chunked in any case, extensions, trailers, HTTP/1.0 without Host) pass.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, { server: { host: '127.0.0.1', port: 0, workers: 1 } }));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

const BODY = JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const LINE = 'POST /v1/chat/completions HTTP/1.1';
const head = (id, more = '') => `Host: x\r\nContent-Type: application/json\r\nX-Test-Id: ${id}\r\n${more}`;
const withLength = (id, more = '') => `${LINE}\r\n${head(id, more)}Content-Length: ${BODY.length}\r\n\r\n${BODY}`;
const chunked = (id, framing) => `${LINE}\r\n${head(id)}Transfer-Encoding: chunked\r\n\r\n${framing}`;
const hex = BODY.length.toString(16);

// [name, bytes for test id `id`, status]
const REFUSED = [
  ['chunk data followed by XX instead of CRLF', (id) => chunked(id, `${hex}\r\n${BODY}XX0\r\n\r\n`), 400],
  ['chunk data followed by a bare LF', (id) => chunked(id, `${hex}\r\n${BODY}\n0\r\n\r\n`), 400],
  ['a chunk size line ending in a bare LF', (id) => chunked(id, `${hex}\n${BODY}\r\n0\r\n\r\n`), 400],
  ['a chunk size that is not hex', (id) => chunked(id, `0x${hex}\r\n${BODY}\r\n0\r\n\r\n`), 400],
  ['a chunk size over max_request_size', (id) => chunked(id, 'fffffffff\r\n'), 413],
  ['a trailer line folded', (id) => chunked(id, `${hex}\r\n${BODY}\r\n0\r\nX-T: 1\r\n 2\r\n\r\n`), 400],
  ['the request line ending in a bare LF', (id) => `${LINE}\n${head(id)}Content-Length: ${BODY.length}\r\n\r\n${BODY}`, 400],
  ['a header line ending in a bare LF', (id) => withLength(id, 'X-A: 1\n'), 400],
  ['a bare CR inside a header value', (id) => withLength(id, 'X-A: 1\r2\r\n'), 400],
  ['a head ending in a bare LF', (id) => `${LINE}\r\n${head(id)}Content-Length: ${BODY.length}\r\n\n${BODY}`, 400],
  ['a folded header line (obs-fold)', (id) => withLength(id, 'X-Folded: a\r\n b\r\n'), 400],
  ['a header line starting with a tab', (id) => withLength(id, '\tX-A: b\r\n'), 400],
  ['whitespace between Content-Length and its colon', (id) => `${LINE}\r\n${head(id)}Content-Length : ${BODY.length}\r\n\r\n${BODY}`, 400],
  ['whitespace between Transfer-Encoding and its colon', (id) => `${LINE}\r\n${head(id)}Transfer-Encoding : chunked\r\n\r\n${hex}\r\n${BODY}\r\n0\r\n\r\n`, 400],
  ['HTTP/9.9', (id) => withLength(id).replace('HTTP/1.1', 'HTTP/9.9'), 505],
  ['HTTP/1.2', (id) => withLength(id).replace('HTTP/1.1', 'HTTP/1.2'), 505],
  ['a request line without a version (HTTP/0.9)', (id) => withLength(id).replace(' HTTP/1.1', ''), 400],
  ['HTTP/1.1 without Host', (id) => withLength(id).replace('Host: x\r\n', ''), 400],
  ['two Host headers', (id) => withLength(id, 'Host: y\r\n'), 400],
  ['Transfer-Encoding: gzip, chunked', (id) => `${LINE}\r\n${head(id)}Transfer-Encoding: gzip, chunked\r\n\r\n${hex}\r\n${BODY}\r\n0\r\n\r\n`, 501],
  ['Transfer-Encoding: gzip', (id) => `${LINE}\r\n${head(id)}Transfer-Encoding: gzip\r\n\r\n${BODY}`, 501],
  ['chunked, then a second Transfer-Encoding', (id) => `${LINE}\r\n${head(id)}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n${hex}\r\n${BODY}\r\n0\r\n\r\n`, 501],
  ['Content-Length with Transfer-Encoding: chunked', (id) => `${LINE}\r\n${head(id)}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${hex}\r\n${BODY}\r\n0\r\n\r\n`, 400],
  ['two differing Content-Length', (id) => withLength(id, 'Content-Length: 4\r\n'), 400],
  ['Transfer-Encoding in HTTP/1.0', (id) => chunked(id, `${hex}\r\n${BODY}\r\n0\r\n\r\n`).replace('HTTP/1.1', 'HTTP/1.0'), 400],
  ['2,500 Helicone-Property-* header fields (over 256 fields)',
    (id) => withLength(id, Array.from({ length: 2500 }, (_, i) => `Helicone-Property-P${i}: v\r\n`).join('')), 431],
];

for (const [name, bytes, status] of REFUSED) {
  test(`refused with ${status}: ${name}; nothing reaches the provider`, async () => {
    const id = h.testId('strict');
    // a well-formed request right behind it: a smuggled one, if the reader
    // lost the request's end
    const { text, closed } = await h.rawExchange(gw.port, bytes(id) + withLength(`${id}-behind`));
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), JSON.stringify(text.slice(0, 60)));
    assert.match(text, /\r\nconnection: close\r\n/i);
    const err = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    assert.equal(err.error.type, 'invalid_request_error');
    assert.equal(typeof err.error.code, 'string');
    assert.equal(err.error.code, { 400: 'invalid_request', 501: 'not_implemented', 505: 'http_version_not_supported', 431: 'headers_too_large', 417: 'expectation_failed', 405: 'method_not_allowed', 413: 'request_too_large' }[status]);
    assert.equal(text.match(/^HTTP\/1\.1 /gm).length, 1, 'one answer only');
    assert.ok(closed, 'the gateway closes the connection');
    assert.deepEqual(await fake.requestsFor(id), [], 'it reached the provider');
    assert.deepEqual(await fake.requestsFor(`${id}-behind`), [], 'the request behind it reached the provider');
  });
}

test('after all those refusals the gateway still serves, and a well-formed request reaches the provider', async () => {
  const id = h.testId('strict-ok');
  const { text } = await h.rawExchange(gw.port, withLength(id), /"usage"/);
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.equal((await fake.requestsFor(id)).length, 1);
});

test('what clients send still passes: chunked in any case, extensions, trailers (not forwarded), HTTP/1.0 without Host', async () => {
  const ids = [h.testId('chunked'), h.testId('ext'), h.testId('http10')];
  const half = Math.floor(BODY.length / 2);
  const a = BODY.slice(0, half);
  const b = BODY.slice(half);
  const cases = [
    `${LINE}\r\n${head(ids[0])}Transfer-Encoding: Chunked\r\n\r\n${hex}\r\n${BODY}\r\n0\r\n\r\n`,
    `${LINE}\r\n${head(ids[1])}Transfer-Encoding: chunked\r\n\r\n` +
      `${a.length.toString(16)};name=value\r\n${a}\r\n${b.length.toString(16).toUpperCase()} ; q="x y"\r\n${b}\r\n` +
      '0\r\nX-Trailer-Smuggled: 1\r\nAuthorization: Bearer sk-trailer\r\n\r\n',
    `\r\nPOST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nX-Test-Id: ${ids[2]}\r\n` +
      `Content-Length: ${BODY.length}\r\n\r\n${BODY}`,
  ];
  for (const [i, bytes] of cases.entries()) {
    // in 5-byte writes: the reader keeps its place across reads
    const parts = [];
    for (let k = 0; k < bytes.length; k += 5) parts.push(bytes.slice(k, k + 5));
    const { text } = await h.rawExchange(gw.port, i === 1 ? parts : bytes, /"usage"/);
    assert.match(text, /^HTTP\/1\.[01] 200 /, `case ${i}: ${text.slice(0, 80)}`);
    const got = await fake.requestsFor(ids[i]);
    assert.equal(got.length, 1, `case ${i}`);
    assert.deepEqual(got[0].body.messages, JSON.parse(BODY).messages, `case ${i}`);
    assert.equal(got[0].headers['x-trailer-smuggled'], undefined);
    assert.notEqual(got[0].headers.authorization, 'Bearer sk-trailer');
  }
});

test('the provider key never reached a client', async () => {
  assert.deepEqual(await h.findSecretLeaks(gw, []), []);
});
