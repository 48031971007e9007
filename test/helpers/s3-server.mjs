// The S3-compatible server of the tests: s3rver 3.7.1 in a child process
// (started by test/helpers/s3-server.ts with --openssl-legacy-provider: s3rver
// encrypts its ListObjectsV2 continuation tokens with DES, which OpenSSL 3
// refuses otherwise), wrapped with what s3rver lacks and the driver relies on:
//
// - PUT with If-None-Match: * answers 412 when the key exists, under a per-key
//   mutex (s3rver ignores the header on PUT);
// - a PUT is atomic: the object is written under a temporary name and renamed
//   (s3rver writes the final file in place, so a cut upload leaves a prefix);
// - AbortMultipartUpload removes the upload (s3rver answers 405);
// - ListMultipartUploads lists them in one page, each begun when its key file
//   was written (s3rver answers 501; so does this server after the fault
//   {"uploadsNotImplemented":true}, until the faults are set again);
// - {"ignoreRange":true} makes it a store that ignores Range headers (200 with the whole
//   object), until the faults are set again;
// - {"shiftRange":n} makes it a store (or proxy) that answers a ranged GET with the range n
//   bytes later (206, its Content-Range saying so), until the faults are set again;
// - {"ignoreIfNoneMatch":true} makes it a store that accepts If-None-Match: *
//   and ignores it (an exclusive PUT overwrites), until the faults are set again;
// - {"batchDeleteRefused":true} makes it a store that refuses DeleteObjects without
//   a Content-MD5 (400 MissingContentMD5), until the faults are set again;
// - faults on demand, through POST /__pgpitr/faults (loopback only, no
//   signature): {"status":503,"count":N} or {"status":503,"forMs":T} answers the
//   next N requests, or those of the next T ms, with that status; and
//   {"resetAfterBytes":n,"count":k} cuts the connection of the next k GET
//   responses after n bytes of body; {"dropResponse":"PUT","count":k} lets the
//   next k PUTs be done and then closes their connections instead of answering
//   (a response lost on the way); {"latencyMs":L} answers every request L ms
//   later (a store across a network, for benchmarks). {} clears every fault.
//   GET /__pgpitr/faults tells how many requests were failed or cut so far.
// - SigV4 signatures are checked (s3rver checks only the access key id): a
//   wrong secret gets 403 SignatureDoesNotMatch, as from a real store.
// - HTTPS when --tls-key and --tls-cert are given; virtual-host buckets
//   (<bucket>.s3.<service endpoint>) with --service-endpoint.
//
// Usage: node --openssl-legacy-provider s3-server.mjs --dir D [--port P]
//   [--bucket B]... [--tls-key K --tls-cert C] [--service-endpoint E]
// Prints one JSON line {"port":P} when it listens; exits when its standard
// input closes (so that it never outlives the test process that started it).

import { createRequire } from 'node:module';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '0' },
    bucket: { type: 'string', multiple: true, default: [] },
    'tls-key': { type: 'string' },
    'tls-cert': { type: 'string' },
    'service-endpoint': { type: 'string', default: 'pgpitr.test' },
  },
});
if (!args.dir) throw new Error('--dir is required');

// ---- atomic PUT: temporary name, then rename ----------------------------------------------
let tempCounter = 0;
FilesystemStore.prototype.putObject = async function putObjectAtomically(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  // Not ending in "._S3rver_object": s3rver's listing never shows it.
  const temp = `${objectPath}.pgpitr-tmp-${process.pid}-${++tempCounter}`;
  const md5 = createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(object.content)) {
      md5.update(object.content);
      size = object.content.length;
      await writeFile(temp, object.content);
    } else {
      const measure = new Transform({
        transform(chunk, _enc, done) {
          md5.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      // pipeline fails on a request cut midway (premature close), where s3rver's pipe() waited forever.
      await pipeline(object.content, measure, createWriteStream(temp));
    }
    const digest = md5.digest('hex');
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
    await rename(temp, objectPath);
    return { size, md5: digest };
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
};

const s3rver = new S3rver({
  directory: args.dir,
  silent: true,
  serviceEndpoint: args['service-endpoint'],
  configureBuckets: args.bucket.map((name) => ({ name })),
});
await s3rver.configureBuckets();
const s3Handler = s3rver.callback();

// ---- faults --------------------------------------------------------------------------------
let faults = {};
const counters = { failed: 0, cut: 0, dropped: 0 };

function takeStatusFault() {
  if (!faults.status) return null;
  if (faults.until !== undefined) {
    if (Date.now() < faults.until) return faults.status;
    faults = {};
    return null;
  }
  if (faults.count > 0) {
    faults.count--;
    const status = faults.status;
    if (faults.count === 0) faults = {};
    return status;
  }
  return null;
}

function takeCutFault(method) {
  if (method !== 'GET' || !faults.resetAfterBytes || !(faults.cutCount > 0)) return null;
  faults.cutCount--;
  const n = faults.resetAfterBytes;
  if (faults.cutCount === 0) faults = {};
  return n;
}

function takeDropFault(method) {
  if (faults.dropResponse !== method || !(faults.dropCount > 0)) return false;
  if (--faults.dropCount === 0) faults = {};
  return true;
}

/** The request is handled, but its answer never leaves: the connection closes instead. */
function dropResponse(res) {
  res.writeHead = () => res;
  res.write = () => true;
  res.end = () => {
    counters.dropped++;
    res.destroy();
    return res;
  };
}

/** Lets n bytes of the response body through, then destroys the connection. */
function cutAfter(res, n) {
  let sent = 0;
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const pass = (chunk, encoding) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return true;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8');
    if (sent >= n) return false;
    const allowed = buf.subarray(0, n - sent);
    sent += allowed.length;
    if (sent >= n) {
      counters.cut++;
      write(allowed, () => res.destroy());
      return false;
    }
    return write(allowed);
  };
  res.write = (chunk, encoding, cb) => {
    const more = pass(chunk, encoding);
    if (typeof encoding === 'function') encoding();
    else if (typeof cb === 'function') cb();
    return more;
  };
  res.end = (chunk, encoding, cb) => {
    pass(chunk, encoding);
    if (sent < n) return end(typeof cb === 'function' ? cb : undefined);
    return res;
  };
}

function xmlError(res, status, code, message, extra = '') {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>pgpitr-test</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// ---- addressing: which bucket and key a request names (as s3rver's vhost middleware does) ---
const vhostPattern = new RegExp(`^(?:(.+)\\.)?s3([-.].+)?\\.${args['service-endpoint'].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

function target(req) {
  const url = new URL(req.url, 'http://x');
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  const parts = url.pathname.split('/').slice(1).map((p) => decodeURIComponent(p));
  const vhost = vhostPattern.exec(host);
  if (vhost?.[1]) return { bucket: vhost[1], key: parts.join('/'), query: url.searchParams };
  return { bucket: parts[0] ?? '', key: parts.slice(1).join('/'), query: url.searchParams };
}

// ---- If-None-Match: * on PUT, under a per-key mutex ------------------------------------------
const keyLocks = new Map();

async function withKeyLock(id, fn) {
  const previous = keyLocks.get(id) ?? Promise.resolve();
  let release;
  const mine = new Promise((r) => (release = r));
  const chained = previous.then(() => mine);
  keyLocks.set(id, chained);
  await previous;
  try {
    await fn();
  } finally {
    release();
    if (keyLocks.get(id) === chained) keyLocks.delete(id);
  }
}

function finished(res) {
  return new Promise((resolve) => {
    if (res.writableFinished || res.destroyed) resolve();
    res.once('finish', resolve);
    res.once('close', resolve);
  });
}

async function conditionalPut(req, res, t) {
  await withKeyLock(`${t.bucket}/${t.key}`, async () => {
    if (await s3rver.store.existsObject(t.bucket, t.key)) {
      req.resume();
      xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', '<Condition>If-None-Match</Condition>');
      return;
    }
    s3Handler(req, res);
    await finished(res);
  });
}

// ---- AbortMultipartUpload ------------------------------------------------------------------
async function abortUpload(req, res, t) {
  req.resume();
  const uploadId = t.query.get('uploadId') ?? '';
  if (!/^[0-9a-f]+$/.test(uploadId)) return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
  const dir = join(s3rver.store.getResourcePath(t.bucket, undefined, 'uploads'), uploadId);
  try {
    await stat(dir);
  } catch {
    return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
  }
  await rm(dir, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

// ---- ListMultipartUploads (s3rver answers 501): one page, from s3rver's upload directories --
const xmlText = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function listUploads(req, res, t) {
  req.resume();
  if (faults.uploadsNotImplemented) return xmlError(res, 501, 'NotImplemented', 'A parameter you provided implies functionality that is not implemented');
  const prefix = t.query.get('prefix') ?? '';
  const root = s3rver.store.getResourcePath(t.bucket, undefined, 'uploads');
  let ids = [];
  try {
    ids = await readdir(root);
  } catch {
    /* no upload yet */
  }
  const uploads = [];
  for (const id of ids) {
    try {
      const keyFile = join(root, id, 'key');
      const key = await readFile(keyFile, 'utf8');
      // The upload began when its key file was written (a test may age it with utimes).
      if (key.startsWith(prefix)) uploads.push({ key, id, initiated: (await stat(keyFile)).mtime.toISOString() });
    } catch {
      /* completed or aborted meanwhile */
    }
  }
  uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlText(t.bucket)}</Bucket>` +
    `<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlText(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
    uploads.map((u) => `<Upload><Key>${xmlText(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('') +
    `</ListMultipartUploadsResult>`;
  res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// ---- SigV4: recompute the signature of a request signed in its Authorization header ----------
const SECRETS = new Map([['S3RVER', 'S3RVER']]); // s3rver's built-in account

const rfc3986 = (v) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256 = (v) => createHash('sha256').update(v).digest('hex');
const hmac = (key, v) => createHmac('sha256', key).update(v).digest();

/** null when the signature holds (or is not a V4 header signature, or the key id is unknown: s3rver says so). */
function signatureProblem(req) {
  const auth = req.headers.authorization;
  if (typeof auth !== 'string' || !auth.startsWith('AWS4-HMAC-SHA256 ')) return null;
  const fields = Object.fromEntries(auth.slice(17).split(/,\s*/).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const [keyId, date, region, service, terminator] = (fields.Credential ?? '').split('/');
  const secret = SECRETS.get(keyId);
  if (secret === undefined) return null;
  if (!fields.SignedHeaders || !fields.Signature || terminator !== 'aws4_request') return 'malformed Authorization header';
  const [rawPath, rawQuery = ''] = (req.url ?? '/').split('?', 2);
  const query = rawQuery
    .split('&')
    .filter((kv) => kv !== '')
    .map((kv) => {
      const i = kv.indexOf('=');
      const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, '%20'));
      return [rfc3986(k), rfc3986(v)];
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const signed = fields.SignedHeaders.split(';');
  const headers = signed.map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [req.method, rawPath, query, headers, fields.SignedHeaders, req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', req.headers['x-amz-date'] ?? '', scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = Buffer.from(createHmac('sha256', key).update(toSign).digest('hex'));
  const given = Buffer.from(fields.Signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'signature mismatch';
}

// ---- the control endpoint ------------------------------------------------------------------
async function control(req, res) {
  if (req.method === 'GET') {
    const body = JSON.stringify(counters);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(body);
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const f = JSON.parse(Buffer.concat(chunks).toString() || '{}');
  faults = {};
  if (f.status) {
    faults.status = f.status;
    if (f.forMs !== undefined) faults.until = Date.now() + f.forMs;
    else faults.count = f.count ?? 1;
  }
  if (f.dropResponse) {
    faults.dropResponse = f.dropResponse;
    faults.dropCount = f.count ?? 1;
  }
  if (f.uploadsNotImplemented) faults.uploadsNotImplemented = true;
  if (f.ignoreIfNoneMatch) faults.ignoreIfNoneMatch = true;
  if (f.batchDeleteRefused) faults.batchDeleteRefused = true;
  if (f.ignoreRange) faults.ignoreRange = true;
  if (f.shiftRange) faults.shiftRange = f.shiftRange;
  if (f.resetAfterBytes) {
    faults.resetAfterBytes = f.resetAfterBytes;
    faults.cutCount = f.count ?? 1;
  }
  if (f.latencyMs) faults.latencyMs = f.latencyMs;
  res.writeHead(204);
  res.end();
}

async function handle(req, res) {
  if (req.url?.startsWith('/__pgpitr/faults')) {
    const remote = req.socket.remoteAddress ?? '';
    if (!/^(::ffff:)?127\.|^::1$/.test(remote)) return xmlError(res, 403, 'AccessDenied', 'control from loopback only');
    return control(req, res);
  }
  if (faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
  const status = takeStatusFault();
  if (status !== null) {
    counters.failed++;
    req.resume();
    return xmlError(res, status, status === 503 ? 'ServiceUnavailable' : 'InternalError', 'injected by the test');
  }
  if (signatureProblem(req) !== null) {
    req.resume();
    return xmlError(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  const cut = takeCutFault(req.method);
  if (cut !== null) cutAfter(res, cut);
  if (takeDropFault(req.method)) dropResponse(res);
  const t = target(req);
  if (req.method === 'PUT' && req.headers['if-none-match'] === '*' && !t.query.has('uploadId') && t.key !== '' && !faults.ignoreIfNoneMatch) return conditionalPut(req, res, t);
  if (req.method === 'DELETE' && t.query.has('uploadId') && t.key !== '') return abortUpload(req, res, t);
  if (req.method === 'POST' && t.query.has('delete') && faults.batchDeleteRefused) {
    req.resume();
    return xmlError(res, 400, 'MissingContentMD5', 'Missing required header for this request: Content-Md5.');
  }
  if (req.method === 'GET' && t.query.has('uploads') && t.key === '' && t.bucket) return listUploads(req, res, t);
  if (req.method === 'GET' && faults.ignoreRange) delete req.headers.range;
  if (req.method === 'GET' && faults.shiftRange && req.headers.range) {
    const n = faults.shiftRange;
    req.headers.range = req.headers.range.replace(/^bytes=(\d+)-(\d*)$/, (_, a, b) => `bytes=${Number(a) + n}-${b === '' ? '' : Number(b) + n}`);
  }
  s3Handler(req, res);
}

const onRequest = (req, res) => {
  handle(req, res).catch((e) => {
    if (!res.headersSent) xmlError(res, 500, 'InternalError', String(e?.message ?? e).replace(/[<>&]/g, ''));
    else res.destroy();
  });
};

const server = args['tls-key']
  ? createHttpsServer({ key: readFileSync(args['tls-key']), cert: readFileSync(args['tls-cert']) }, onRequest)
  : createHttpServer(onRequest);
server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
server.on('error', (e) => {
  process.stderr.write(`s3-server: ${e.message}\n`);
  process.exit(1);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
