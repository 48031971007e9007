// The most bytes one write(2) carries into the page cache. Measured here
// (Linux 6.18 guest, ext4, dd of a 1 GiB file into a new file, page cache
// warm): writes of 1 MiB cost 1.5-3.8 s of system time per GiB in most runs,
// against 0.25-0.32 s for writes of 64-512 KiB, every run. A write that large
// gets the kernel to allocate large page-cache folios, whose fresh memory is
// slow to come by on this virtual machine (the host takes back free memory,
// and a high-order block must be found and faulted in); smaller writes reuse
// what is at hand. A few more system calls per MiB cost nothing measurable
// elsewhere, so large buffers are written in pieces of this size.

export const WRITE_PIECE = 256 * 1024;
