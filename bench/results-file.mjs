// RESULTS.md holds one section per benchmark script. basebackup.mjs writes the
// file whole; the others replace their own section (from its "## " heading up to
// the next one, or the end) and leave the rest alone, appending the section the
// first time.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Puts `section` (which starts with the line `heading`) into `path` in place of the old one. */
export function replaceSection(path, heading, section) {
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const all = text.split('\n');
  const start = all.findIndex((l) => l === heading);
  if (start >= 0) {
    let end = all.findIndex((l, i) => i > start && l.startsWith('## '));
    if (end < 0) end = all.length;
    text = [...all.slice(0, start), ...section.split('\n'), ...all.slice(end)].join('\n');
  } else {
    text = text.replace(/\n*$/, '') + (text ? '\n\n' : '') + section;
  }
  writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`);
}
