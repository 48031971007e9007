// Reads a password from the terminal without echo (-W, or when the server asks
// and none is configured), like libpq's simple_prompt.

import { PgpitrError } from '../common/errors.js';

export async function promptPassword(prompt = 'Password: '): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    throw new PgpitrError('ERR_CONNECTION', 'a password is required but there is no terminal to ask for it', {
      hint: 'set PGPASSWORD or add the password to ~/.pgpass',
    });
  }
  // Echo off before the prompt shows: a password typed as soon as it appears is never echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          cleanup();
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          cleanup();
          reject(new PgpitrError('ERR_INTERRUPTED', 'password prompt interrupted'));
          return;
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const cleanup = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}
