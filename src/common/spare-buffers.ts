// Byte buffers handed from a finished user to the next one on the same thread.
// Restore's copiers decode one file after another: a decoder that allocated
// its megabyte afresh for each of a thousand small files would have the kernel
// fault in a gigabyte of new pages, which on a virtual machine costs more than
// the decoding. A module holds one pool per thread (each worker thread loads
// its own copy); what is handed back must no longer be used by its giver.

const KEEP = 4;
const spares: Buffer<ArrayBuffer>[] = [];

/** A buffer of at least `size` bytes (contents undefined): a spare one when there is one big enough. */
export function takeBuffer(size: number): Buffer<ArrayBuffer> {
  for (let i = spares.length - 1; i >= 0; i--) {
    if (spares[i]!.length >= size) return spares.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafeSlow(size);
}

/** Hands `b` to the next taker (a few are kept; the rest is left to the garbage collector). */
export function giveBack(b: Buffer<ArrayBuffer>): void {
  if (b.length === 0) return;
  if (spares.length < KEEP) spares.push(b);
  else {
    // Keep the largest: they serve every size.
    let smallest = 0;
    for (let i = 1; i < spares.length; i++) if (spares[i]!.length < spares[smallest]!.length) smallest = i;
    if (spares[smallest]!.length < b.length) spares[smallest] = b;
  }
}
