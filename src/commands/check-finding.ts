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
}
