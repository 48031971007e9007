// A made-up WAL segment for unit tests: a long page header (magic, timeline,
// address, system identifier, segment and page sizes) that archive-push
// checks, then zeros, with `mark` at byte 100 to tell contents apart.

export function walSegment(o: { segNo: number; segmentSize: number; systemId: string; timeline?: number; mark?: string }): Buffer {
  const b = Buffer.alloc(o.segmentSize);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(o.timeline ?? 1, 4);
  b.writeBigUInt64LE(BigInt(o.segNo) * BigInt(o.segmentSize), 8);
  b.writeBigUInt64LE(BigInt(o.systemId), 24);
  b.writeUInt32LE(o.segmentSize, 32);
  b.writeUInt32LE(8192, 36);
  if (o.mark !== undefined) b.write(o.mark, 100);
  return b;
}
