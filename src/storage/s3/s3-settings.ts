// What the S3 driver needs to reach one bucket, already resolved from the
// repoN-s3-* settings (cli/ builds it). This file imports nothing, so the
// configuration code can name the type without loading the AWS SDK, which
// only s3-storage.ts loads, and only when a repository of type s3 is opened.

export type S3UriStyle = 'host' | 'path';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StorageSettings {
  /** For messages: which repository this is ("repo2"). */
  label: string;
  /** scheme://host[:port], https unless the user wrote http:// (repoN-s3-endpoint + repoN-storage-port). */
  endpoint: string;
  bucket: string;
  region: string;
  /** Key prefix inside the bucket (repoN-path), without leading or trailing '/'; '' is the bucket's root. */
  prefix: string;
  /** host: bucket.endpoint (virtual host, the default, as pgBackRest); path: endpoint/bucket. */
  uriStyle: S3UriStyle;
  /** repoN-storage-verify-tls; true unless the user said n. */
  verifyTls: boolean;
  /** repoN-storage-ca-file: PEM file that replaces the default trusted CAs. */
  caFile?: string;
  /** repoN-storage-host: connect to this host instead of resolving the endpoint's (tests, private links). */
  storageHost?: string;
  /** repoN-s3-key / -key-secret / -token; absent: the AWS default chain (environment, shared files, instance). */
  credentials?: S3Credentials;
}
