// The S3 Storage driver (AWS S3 and compatible stores), on the AWS SDK for
// JavaScript v3, whose client s3-client.ts makes. Loaded only when a
// repository of type s3 is opened (open it with a dynamic import): the SDK
// costs a few hundred ms to load, which posix commands must not pay.
//
// Mapping (design notes §3.1): a write is one PUT up to the part size and a
// multipart upload above it (s3-upload.ts: parts in the storage's pooled
// buffers, each body a stream the SDK can send again on a retry, aborted on
// error); an exclusive write is
// If-None-Match: *; a read is a (ranged) GET that resumes a broken body; a
// list is ListObjectsV2, paged, with '/' as delimiter unless recursive;
// removals of several objects are DeleteObjects batches. Objects are atomic by
// nature and durable once acknowledged: no temporary names, no fsync.

import { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { PgpitrError } from '../../common/errors.js';
import { checkStoragePath } from '../storage-path.js';
import type { ListOptions, PendingUpload, ReadOptions, Storage, StorageEntry, StorageFeatures, WriteOptions } from '../storage.js';
import type { S3StorageSettings } from './s3-settings.js';
import { S3Keys, nextPage, s3Location, s3Url } from './s3-keys.js';
import { bucketMissing, httpStatus, s3Error, s3ErrorName } from './s3-errors.js';
import { rangeRefusal } from './s3-range.js';
import { completedBefore } from './s3-completed-before.js';
import { makeS3Agents } from './s3-agents.js';
import type { S3Agents } from './s3-agents.js';
import { resumableRead } from './s3-read.js';
import type { OpenedBody } from './s3-read.js';
import { DEFAULT_S3_TUNING, tuningFromEnv } from './s3-tuning.js';
import type { S3Tuning } from './s3-tuning.js';
import { PartPool } from './s3-part-pool.js';
import type { ReplayableBody } from './s3-body.js';
import { makeS3Client } from './s3-client.js';
import { listPendingUploads } from './s3-pending-uploads.js';
import { deleteKeys } from './s3-delete.js';
import type { DeleteTarget } from './s3-delete.js';
import type { Sdk } from './s3-client.js';
import { sendBuffer, sendStream, sendWhole } from './s3-upload.js';
import type { CompletedPart, ObjectSender } from './s3-upload.js';
import { constants as bufferConstants } from 'node:buffer';

/** The most an exclusive write (one PUT) takes: S3's limit for one PUT, or what one Buffer holds here. */
const EXCLUSIVE_MAX = Math.min(5 * 1024 ** 3, bufferConstants.MAX_LENGTH);

/**
 * Opens the S3 storage of one repository: loads the SDK, builds the client. No request is made
 * yet (the first one tells whether the bucket and the credentials work). tuning is for tests:
 * by default, what PGPITR_S3_TUNING says (tests that run the CLI as a child process).
 */
export async function openS3Storage(settings: S3StorageSettings, tuning: Partial<S3Tuning> = tuningFromEnv()): Promise<Storage> {
  return new S3Storage(settings, { ...DEFAULT_S3_TUNING, ...tuning });
}

class S3Storage implements Storage {
  readonly features: StorageFeatures = { move: false, pathSync: false, directories: false, localPaths: false, conditionalCreate: true, remote: true };
  readonly location: string;
  private readonly sdk: Sdk;
  private readonly client: S3Sdk.S3Client;
  private readonly agents: S3Agents;
  private readonly keys: S3Keys;
  private readonly parts: PartPool;
  /** Set once HeadBucket succeeded: a 404 on a HEAD is then a missing key, not a missing bucket. */
  private bucketSeen = false;
  /** How removals reach the store (s3-delete.ts), set up with the client. */
  private readonly deleting: DeleteTarget;

  constructor(
    private readonly settings: S3StorageSettings,
    private readonly tuning: S3Tuning,
  ) {
    this.location = s3Location(settings);
    this.keys = new S3Keys(settings.prefix);
    if (tuning.partSize < 5 * 1024 * 1024) throw new PgpitrError('ERR_INTERNAL', `S3 part size ${tuning.partSize} is below S3's minimum of 5 MiB`);
    this.parts = new PartPool(tuning.partSize, tuning.partBuffers);
    this.agents = makeS3Agents(settings, tuning.maxSockets);
    ({ sdk: this.sdk, client: this.client } = makeS3Client(settings, tuning, this.agents));
    this.deleting = { sdk: this.sdk, client: this.client, bucket: settings.bucket, batch: tuning.deleteBatch, location: this.location, fail: (a, k, e) => this.fail(a, k, e), oneByOne: false };
  }

  private url(key: string): string {
    return s3Url(this.settings, key);
  }

  private fail(action: string, key: string, e: unknown): PgpitrError {
    return s3Error(this.settings, action, this.url(key), e);
  }

  /** After a bodiless 404 (HEAD): a missing bucket gets its own error; asked once per storage. */
  private async checkBucket(): Promise<boolean> {
    if (this.bucketSeen) return true;
    try {
      await this.client.send(new this.sdk.s3.HeadBucketCommand({ Bucket: this.settings.bucket }));
      this.bucketSeen = true;
      return true;
    } catch (e) {
      if (httpStatus(e) === 404) return false;
      throw this.fail('read information about', '', e);
    }
  }

  async info(path: string): Promise<StorageEntry | null> {
    const rel = checkStoragePath(path, this.location);
    if (rel === '') return (await this.checkBucket()) ? { name: path, type: 'directory', size: 0, mtimeMs: 0 } : null;
    const key = this.keys.key(rel);
    try {
      const head = await this.client.send(new this.sdk.s3.HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      this.bucketSeen = true;
      return { name: path, type: 'file', size: head.ContentLength ?? 0, mtimeMs: head.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (httpStatus(e) === 404) {
        if (!(await this.checkBucket())) throw bucketMissing(this.settings, e);
        return null;
      }
      if (httpStatus(e) === 403) throw this.fail('read information about', key, await this.explainDenied(key, e));
      throw this.fail('read information about', key, e);
    }
  }

  /**
   * A HEAD's 403 has no body: whether the secret is wrong or a permission is missing, only a
   * request with an answer body tells (a one-byte GET of the same key). The HEAD's error when
   * that says nothing more.
   */
  private async explainDenied(key: string, headError: unknown): Promise<unknown> {
    try {
      await this.client.send(new this.sdk.s3.GetObjectCommand({ Bucket: this.settings.bucket, Key: key, Range: 'bytes=0-0' }));
    } catch (e) {
      if (httpStatus(e) === 403 && s3ErrorName(e) !== undefined && s3ErrorName(e) !== 'Forbidden') return e;
    }
    return headError;
  }

  async list(path: string, opts: ListOptions = {}): Promise<StorageEntry[]> {
    const rel = checkStoragePath(path, this.location);
    const base = this.keys.under(rel);
    const prefix = base + (opts.prefix ?? '');
    const detail = opts.detail !== false;
    const out: StorageEntry[] = [];
    let token: string | undefined;
    do {
      let page: S3Sdk.ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new this.sdk.s3.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: prefix,
            ...(opts.recursive ? {} : { Delimiter: '/' }),
            MaxKeys: this.tuning.listPageSize,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (e) {
        throw this.fail('list', prefix, e);
      }
      this.bucketSeen = true;
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(base.length);
        // "Directory marker" objects (a key ending in '/', made by some consoles) are not files.
        if (name === '' || name.endsWith('/')) continue;
        out.push({ name, type: 'file', size: detail ? (o.Size ?? 0) : 0, mtimeMs: detail ? (o.LastModified?.getTime() ?? 0) : 0 });
      }
      for (const p of page.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(base.length, -1);
        if (name !== '') out.push({ name, type: 'directory', size: 0, mtimeMs: 0 });
      }
      token = nextPage(page.IsTruncated, token, page.NextContinuationToken, () => this.url(prefix));
    } while (token !== undefined);
    return out;
  }

  /** One GET of [offset, offset + length) (length undefined: to the end); null when the key is missing. */
  private async open(key: string, offset: number, length: number | undefined, etag?: string): Promise<OpenedBody | null> {
    const range = offset === 0 && length === undefined ? undefined : `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`;
    let got: S3Sdk.GetObjectCommandOutput;
    try {
      got = await this.client.send(
        new this.sdk.s3.GetObjectCommand({ Bucket: this.settings.bucket, Key: key, ...(range ? { Range: range } : {}), ...(etag ? { IfMatch: etag } : {}) }),
      );
    } catch (e) {
      const name = s3ErrorName(e);
      if (name === 'NoSuchKey') return null;
      if (name === 'InvalidRange' || httpStatus(e) === 416) return { body: Readable.from([]), length: 0 };
      throw this.fail('read', key, e);
    }
    this.bucketSeen = true;
    const body = got.Body as (Readable & AsyncIterable<Uint8Array>) | undefined;
    const refused = range === undefined ? null : rangeRefusal(this.url(key), range, got.$metadata.httpStatusCode, got.ContentRange, offset, length);
    if (refused) {
      body?.destroy();
      throw refused;
    }
    return {
      body: body ?? Readable.from([]),
      ...(got.ContentLength !== undefined ? { length: got.ContentLength } : {}),
      ...(got.ETag !== undefined ? { etag: got.ETag } : {}),
    };
  }

  async read(path: string, opts: ReadOptions = {}): Promise<Readable | null> {
    const rel = checkStoragePath(path, this.location);
    const key = this.keys.key(rel);
    const start = opts.offset ?? 0;
    if (opts.length !== undefined && opts.length <= 0) {
      // Nothing to read, but a missing object still reads as null.
      return (await this.info(path)) === null ? null : Readable.from([]);
    }
    const first = await this.open(key, start, opts.length);
    if (first === null) return null;
    return resumableRead({
      start,
      ...(opts.length !== undefined ? { length: opts.length } : {}),
      first,
      resumes: this.tuning.readResumes,
      reopen: async (offset, length, etag) => {
        const next = await this.open(key, offset, length, etag);
        if (next === null) throw new Error('the object was removed while it was read');
        return next;
      },
      fail: (e) => this.fail('read', key, e),
    });
  }

  async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts: WriteOptions = {}): Promise<void> {
    const rel = checkStoragePath(path, this.location);
    if (rel === '') throw new PgpitrError('ERR_STORAGE', `could not write ${this.location}: the storage root is a directory`);
    const key = this.keys.key(rel);
    const exclusive = opts.exclusive ?? false;
    const sender = this.sender(key, exclusive);
    const sourceFailed = (e: unknown) => this.sourceFailed(key, e);
    // One conditional PUT: a backup set's manifest of a cluster with tens of thousands of files is larger than a part.
    if (exclusive) {
      if (!Buffer.isBuffer(source) && (opts.size ?? 0) > EXCLUSIVE_MAX) throw this.exclusiveTooLarge(key);
      return sendWhole(source as Buffer | AsyncIterable<Buffer>, sender, { limit: EXCLUSIVE_MAX, tooLarge: () => this.exclusiveTooLarge(key), sourceFailed });
    }
    try {
      if (Buffer.isBuffer(source)) await sendBuffer(source, sender, this.tuning.partSize, this.tuning.partQueue);
      else await sendStream(source as AsyncIterable<Buffer>, sender, { pool: this.parts, queue: this.tuning.partQueue, sourceFailed });
    } catch (e) {
      // The upload's own refusals (more parts than S3 allows) name the object as the requests' do.
      throw sourceFailed(e);
    }
  }

  /** The requests that store the object at key (s3-upload.ts decides which), their errors mapped. */
  private sender(key: string, exclusive: boolean): ObjectSender {
    const Bucket = this.settings.bucket;
    const Key = key;
    const body = (b: ReplayableBody) => b as unknown as S3Sdk.PutObjectCommandInput['Body'];
    return {
      put: (b) => this.put(key, b, exclusive),
      begin: async () => {
        try {
          const r = await this.client.send(new this.sdk.s3.CreateMultipartUploadCommand({ Bucket, Key }));
          this.bucketSeen = true;
          if (r.UploadId === undefined) throw new Error('the store gave no upload id');
          return r.UploadId;
        } catch (e) {
          throw this.fail('write', key, e);
        }
      },
      part: async (UploadId, PartNumber, b) => {
        try {
          const r = await this.client.send(new this.sdk.s3.UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body(b), ContentLength: b.length }));
          if (r.ETag === undefined) throw new Error(`the store gave no ETag for part ${PartNumber}`);
          return r.ETag;
        } catch (e) {
          throw this.fail('write', key, e);
        }
      },
      complete: async (UploadId, parts: CompletedPart[]) => {
        try {
          await this.client.send(new this.sdk.s3.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
        } catch (e) {
          if (await completedBefore(e, parts, () => this.client.send(new this.sdk.s3.HeadObjectCommand({ Bucket, Key })))) return;
          throw this.fail('write', key, e);
        }
      },
      abort: async (UploadId) => {
        await this.client.send(new this.sdk.s3.AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      },
    };
  }

  private exclusiveTooLarge(key: string): PgpitrError {
    return new PgpitrError('ERR_STORAGE', `exclusive write of ${this.url(key)} is larger than one PUT can store (${EXCLUSIVE_MAX} bytes)`, {
      hint: 'an object created only if absent is sent as one PUT (a multipart upload cannot be conditional on every store)',
    });
  }

  private sourceFailed(key: string, e: unknown): PgpitrError {
    if (e instanceof PgpitrError) return e;
    return new PgpitrError('ERR_STORAGE', `could not write ${this.url(key)}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }

  private async put(key: string, body: ReplayableBody, exclusive: boolean): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.s3.PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: key,
          Body: body as unknown as S3Sdk.PutObjectCommandInput['Body'],
          ContentLength: body.length,
          ...(exclusive ? { IfNoneMatch: '*' } : {}),
        }),
      );
      this.bucketSeen = true;
    } catch (e) {
      if (exclusive && (httpStatus(e) === 412 || s3ErrorName(e) === 'PreconditionFailed')) {
        // A retried PUT whose first attempt was stored (its answer lost) finds its own object.
        if (((e as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1 && (await this.holds(key, body.data))) return;
        throw new PgpitrError('ERR_TARGET', `${this.url(key)} already exists`, {
          hint: 'stored objects are never overwritten; another process may be writing the same object',
        });
      }
      throw this.fail('write', key, e);
    }
  }

  /**
   * Does the object at key hold exactly body (false: it differs, or is gone)? A failed read throws. Its bytes are compared, not its ETag: the ETag is
   * the MD5 of a single PUT's bytes only without SSE-KMS or SSE-C, and not on every store.
   */
  private async holds(key: string, body: Buffer): Promise<boolean> {
    try {
      const got = await this.open(key, 0, undefined);
      if (got === null) return false;
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of got.body) {
        n += c.length;
        if (n > body.length) {
          got.body.destroy?.();
          return false;
        }
        chunks.push(Buffer.from(c));
      }
      return Buffer.concat(chunks, n).equals(body);
    } catch (e) {
      // Not "someone else's object": that would fail the write of our own (a backup's manifest) for a read that failed.
      throw e instanceof PgpitrError ? e : this.fail('read back', key, e);
    }
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const rel = checkStoragePath(path, this.location);
    if (opts.recursive) {
      const under = await this.list(rel, { recursive: true, detail: false });
      const keys = under.map((e) => this.keys.key(rel === '' ? e.name : `${rel}/${e.name}`));
      if (rel !== '') keys.push(this.keys.key(rel));
      await this.deleteKeys(keys);
      return;
    }
    if (rel === '') return;
    const key = this.keys.key(rel);
    try {
      await this.client.send(new this.sdk.s3.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key }));
    } catch (e) {
      if (s3ErrorName(e) === 'NoSuchKey') return;
      throw this.fail('remove', key, e);
    }
  }

  async removeMany(paths: readonly string[]): Promise<void> {
    await this.deleteKeys(paths.map((p) => this.keys.key(checkStoragePath(p, this.location))).filter((k) => k !== ''));
  }

  /** DeleteObjects in batches; every batch is tried, then one error names the keys that failed. */
  private deleteKeys(keys: string[]): Promise<void> {
    return deleteKeys(this.deleting, keys);
  }

  async listUploads(): Promise<PendingUpload[] | null> {
    const prefix = this.keys.under('');
    return listPendingUploads(this.sdk, this.client, this.settings.bucket, prefix, (e) => this.fail('list the incomplete multipart uploads under', prefix, e));
  }

  async abortUpload(upload: PendingUpload): Promise<void> {
    const key = this.keys.key(checkStoragePath(upload.path, this.location));
    try {
      await this.client.send(new this.sdk.s3.AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key, UploadId: upload.uploadId }));
    } catch (e) {
      if (s3ErrorName(e) === 'NoSuchUpload' || httpStatus(e) === 404) return;
      throw this.fail('abort the multipart upload of', key, e);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agents.destroy();
  }
}
