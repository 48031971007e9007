// Placeholder until the S3 driver lands (branch s3-driver): opening an s3
// repository says so clearly.

import { usageError } from '../../common/errors.js';
import type { Storage } from '../storage.js';
import type { S3StorageSettings } from './s3-settings.js';

export async function openS3Storage(settings: S3StorageSettings): Promise<Storage> {
  throw usageError(`${settings.label} is of type s3, which this build of pgpitr cannot open yet`, 'use a posix repository');
}
