// The version of pgpitr, read once from package.json at start-up.

import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export const PGPITR_VERSION = readVersion();
