// The server's rule for a page that fails its checksum during a base backup
// (basebackup.c): a concurrent write may have torn it (its first half read
// before the server wrote the block, its second half after), so it is read
// again once and judged again, the LSN rule included (a page rewritten since
// the backup started is skipped); only a page that fails twice is counted,
// and what is copied is the page as read the second time. Kept apart from the
// reader thread so it can be tested without one.

import { PAGE_SIZE, verifyPage } from '../../postgres/page-checksum.js';
import type { ChecksumFailure } from './read-job.js';

/**
 * Verifies `page` (one block, `block` its number); on a failure calls `readAgain`,
 * which gives the block read again (null when it could not read it whole; 'gone'
 * when the file now ends before it), copies that into `page` and verifies it once
 * more. Returns the failure to count, or null. A file that ends before the block
 * on the second look was truncated (VACUUM) or dropped meanwhile: as the server
 * does, no failure, and the page is zeros (the server pads what a truncated file
 * no longer has; WAL replay truncates the relation again).
 */
export function verifyWithReread(page: Buffer, block: number, startLsn: bigint, readAgain: () => Buffer | null | 'gone'): ChecksumFailure | null {
  let r = verifyPage(page, block, startLsn);
  if (typeof r === 'string') return null;
  const again = readAgain();
  if (again === 'gone') {
    page.fill(0);
    return null;
  }
  if (again !== null && again.length === PAGE_SIZE) {
    again.copy(page);
    r = verifyPage(page, block, startLsn);
    if (typeof r === 'string') return null;
  }
  return { block, calculated: r.calculated, expected: r.expected };
}
