// Connects transform stages and a final writable into one pipeline and hands
// back its head to write into and a promise for its completion.

import { pipeline, finished } from 'node:stream/promises';
import type { Duplex, Writable } from 'node:stream';

export interface Chain {
  head: Writable;
  done: Promise<void>;
  destroy(): void;
}

type PipelineFn = (...streams: (Duplex | Writable)[]) => Promise<void>;

export function chain(stages: Duplex[], last: Writable): Chain {
  const done = stages.length === 0 ? finished(last) : (pipeline as unknown as PipelineFn)(...stages, last);
  done.catch(() => {});
  return {
    head: stages[0] ?? last,
    done,
    destroy: () => {
      for (const s of stages) s.destroy();
      last.destroy();
    },
  };
}
