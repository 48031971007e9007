// One result of pgpitr check: what was checked, whether it passed, and what to
// change when it did not.

export interface Finding {
  check: string;
  /** N of the repository the finding is about (absent: about the server). */
  repo?: number;
  ok: boolean;
  message: string;
  hint?: string;
  count?: number;
  /** Figures for monitoring, beside the message's words (docs/monitoring.md lists them per check). */
  data?: Record<string, string | number | boolean | null>;
}

/** A failed finding from an error: its message, and its hint when it has one. */
export function errorFinding(check: string, e: unknown): Finding {
  const hint = (e as { hint?: unknown } | null)?.hint;
  return { check, ok: false, message: (e as Error).message, ...(typeof hint === 'string' && hint ? { hint } : {}) };
}
