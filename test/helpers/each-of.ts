// Runs a test step on many items a few at a time: independent pgpitr processes
// (usage errors, archive-gets) that spend most of their time starting up.

/** fn on every item, `width` at a time; the first failure is thrown once those running have ended. */
export async function eachOf<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
