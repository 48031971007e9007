// Start, stop, kill and restart the tests' S3 server (test/helpers/s3-server.mjs,
// a child process) and inject its faults. Each server has its own temporary
// directory and its own port (kept across restarts, so that a client built
// before a kill reaches the restarted server). A server is never left behind:
// the child exits when its standard input closes, i.e. with this process,
// however this process ends, and stop() removes its directory.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3StorageSettings } from '../../src/storage/s3/s3-settings.js';

// dist/test/helpers/s3-server.js → test/helpers/s3-server.mjs (not compiled: plain JavaScript).
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'helpers', 's3-server.mjs');
const START_TIMEOUT_MS = 15_000;

/** Test credentials: s3rver knows this account (it checks the key id, not the secret). */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3ServerOptions {
  /** Buckets that exist from the start (default: ['bkt']). */
  buckets?: string[];
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Virtual-host buckets are <bucket>.s3.<serviceEndpoint> (default pgpitr.test). */
  serviceEndpoint?: string;
}

export interface S3Faults {
  /** Answer with this HTTP status... */
  status?: number;
  /** ...the next count requests (default 1), or every request for forMs. */
  count?: number;
  forMs?: number;
  /** Cut the connection of the next count GET responses after this many body bytes. */
  resetAfterBytes?: number;
  /** Do the next count requests of this method, then close their connections instead of answering. */
  dropResponse?: 'PUT' | 'GET' | 'DELETE' | 'POST' | 'HEAD';
  /** Answer ListMultipartUploads with 501 NotImplemented (as s3rver itself and several stores do). */
  uploadsNotImplemented?: boolean;
  /** Accept If-None-Match: * on PUT and ignore it (an exclusive write overwrites), as some stores do. */
  ignoreIfNoneMatch?: boolean;
  /** Refuse DeleteObjects with 400 MissingContentMD5, as stores that require a Content-MD5 do. */
  batchDeleteRefused?: boolean;
  /** Ignore Range headers (200 with the whole object), as some stores and proxies do. */
  ignoreRange?: boolean;
  /** Answer a ranged GET with the range this many bytes later (206, Content-Range saying so). */
  shiftRange?: number;
  /** Answer every request this many ms later (a store across a network: benchmarks). */
  latencyMs?: number;
}

export interface S3TestServer {
  readonly port: number;
  /** The server process (benchmarks read its CPU time), or null while it is stopped. */
  readonly pid: number | null;
  readonly dir: string;
  /** http(s)://127.0.0.1:port */
  readonly endpoint: string;
  /** Path-style settings for one bucket (the first by default) with the test credentials. */
  settings(overrides?: Partial<S3StorageSettings>): S3StorageSettings;
  faults(f: S3Faults): Promise<void>;
  /** Requests failed, responses cut and responses dropped so far by injected faults. */
  faultCounters(): Promise<{ failed: number; cut: number; dropped: number }>;
  /** Multipart uploads begun and neither completed nor aborted, in a bucket. */
  uploadsLeft(bucket?: string): string[];
  /** SIGKILL, at once: the server disappears mid-request. */
  kill(): Promise<void>;
  /** Starts again on the same port and directory. */
  restart(): Promise<void>;
  /** Ends the server and removes its directory. */
  stop(): Promise<void>;
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-s3-'));
  const buckets = options.buckets ?? ['bkt'];
  const scheme = options.tls ? 'https' : 'http';
  const args = ['--dir', dir, ...buckets.flatMap((b) => ['--bucket', b]), '--service-endpoint', options.serviceEndpoint ?? 'pgpitr.test'];
  if (options.tls) args.push('--tls-key', options.tls.key, '--tls-cert', options.tls.cert);

  let child: ChildProcess | null = null;
  let port = 0;
  const launch = async (wanted: number): Promise<void> => {
    const c = spawn(process.execPath, ['--openssl-legacy-provider', SCRIPT, ...args, '--port', String(wanted)], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`the S3 test server did not start in ${START_TIMEOUT_MS} ms: ${err}`)), START_TIMEOUT_MS);
      c.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      c.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the S3 test server exited (${code ?? signal}) before listening: ${err}`));
      });
    });
    c.stdout!.resume();
    c.stderr!.resume();
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    await exited;
  };

  await launch(0);
  const ca = options.tls ? readFileSync(options.tls.cert) : undefined;
  const call = (method: string, body?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = (scheme === 'https' ? httpsRequest : httpRequest)(
        { host: '127.0.0.1', port, method, path: '/__pgpitr/faults', ...(ca ? { rejectUnauthorized: false } : {}), agent: false },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => (res.statusCode !== undefined && res.statusCode < 300 ? resolve(text) : reject(new Error(`faults: HTTP ${res.statusCode}: ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const server: S3TestServer = {
    get port() {
      return port;
    },
    get pid() {
      return (child as ChildProcess | null)?.pid ?? null;
    },
    dir,
    get endpoint() {
      return `${scheme}://127.0.0.1:${port}`;
    },
    settings: (overrides = {}) => ({
      label: 'repo1',
      endpoint: `${scheme}://127.0.0.1:${port}`,
      bucket: buckets[0] ?? 'bkt',
      region: 'us-east-1',
      prefix: '',
      uriStyle: 'path',
      verifyTls: true,
      credentials: { ...TEST_CREDENTIALS },
      ...overrides,
    }),
    faults: async (f) => {
      await call('POST', JSON.stringify(f));
    },
    faultCounters: async () => JSON.parse(await call('GET')) as { failed: number; cut: number; dropped: number },
    uploadsLeft: (bucket = buckets[0] ?? 'bkt') => {
      try {
        return readdirSync(join(dir, bucket, '._S3rver_uploads'));
      } catch {
        return [];
      }
    },
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGKILL');
      // The port was ours a moment ago; another process may take it in between (rare): retry.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(port);
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    stop: async () => {
      await end('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
