// A server notice as libpq's default notice processor prints it (and so as
// pg_basebackup shows it): "WARNING:  message", then "DETAIL:  " and "HINT:  "
// lines. Scripts grep for "^WARNING:"; keep the severity at the start of the line.

import type { ServerErrorFields } from '../common/errors.js';

export function noticeText(fields: ServerErrorFields): string {
  const lines = [`${fields.severity ?? 'NOTICE'}:  ${fields.message ?? ''}`];
  if (fields.detail !== undefined) lines.push(`DETAIL:  ${fields.detail}`);
  if (fields.hint !== undefined) lines.push(`HINT:  ${fields.hint}`);
  return lines.join('\n');
}
