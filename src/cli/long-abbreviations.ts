// Long options abbreviated as getopt_long lets pg_basebackup and pg_receivewal
// take them: any unambiguous prefix ("--checkp=fast", "--pgd DIR") stands for
// the option it begins, an exact name always wins, and a prefix of several is
// refused naming them. Only the drop-in commands do this (their users' scripts
// were written for getopt); pgpitr's own commands take full names. The
// arguments are rewritten before node:util's parseArgs sees them: an option's
// value (the word after "--label" or "-D") and everything after "--" are left
// as they are.

import { usageError } from '../common/errors.js';

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

/**
 * `own`: the options pgpitr adds to the tool's (--progress-format, --jobs, --stanza, ...): a prefix
 * the tool takes for one of its own options ("--prog", "--comp", "--sta") still means that one.
 */
export function expandLongAbbreviations(argv: string[], spec: Readonly<Record<string, OptionSpec>>, command: string, own: readonly string[] = []): string[] {
  const names = Object.keys(spec);
  const byShort = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  const out: string[] = [];
  let valueNext = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (valueNext) {
      valueNext = false;
      out.push(a);
    } else if (a === '--') {
      out.push(...argv.slice(i));
      break;
    } else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      let full = name;
      if (!Object.hasOwn(spec, name)) {
        let candidates = names.filter((n) => n.startsWith(name));
        const theTools = candidates.filter((n) => !own.includes(n));
        if (candidates.length > 1 && theTools.length === 1) candidates = theTools;
        if (candidates.length > 1) {
          throw usageError(`option "--${name}" is ambiguous: ${candidates.map((c) => `--${c}`).join(', ')}`, `give more of its name; try "pgpitr ${command} --help"`);
        }
        if (candidates.length === 1) full = candidates[0]!;
      }
      valueNext = eq < 0 && spec[full]?.type === 'string';
      out.push(full === name ? a : `--${full}${eq < 0 ? '' : a.slice(eq)}`);
    } else {
      // A cluster of short options ("-vPD", "-Ddir"): the first that takes a value takes the rest,
      // or the next word when it ends the cluster.
      if (a.startsWith('-') && a.length > 1) {
        for (let j = 1; j < a.length; j++) {
          const name = byShort.get(a[j]!);
          if (name === undefined) break;
          if (spec[name]!.type === 'string') {
            valueNext = j === a.length - 1;
            break;
          }
        }
      }
      out.push(a);
    }
  }
  return out;
}
