// floorcopy SRC DST NPROC [sync]: copies a directory tree through userspace
// (pread/pwrite of 1 MiB), with NPROC forked processes, the work cut in 64 MiB
// pieces handed out round-robin; with a 4th argument each piece is fsync'd.
// It does nothing a backup must do besides copying (no checksum, no
// compression, no manifest, no server): the floor under any backup of the same
// directory on the same machine. bench/RESULTS.md ("What the machine allows")
// reports it; build and run:
//   gcc -O2 -o /tmp/floorcopy bench/floorcopy.c
//   cat DATA/base/*/* > /dev/null; /usr/bin/time /tmp/floorcopy DATA /tmp/copy 2 sync
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <ftw.h>
typedef struct { char src[512]; char dst[512]; off_t off, len; } piece;
static piece *pieces; static int np = 0, cap = 0; static const char *S, *D;
static int visit(const char *p, const struct stat *st, int fl, struct FTW *f) {
  char dst[512]; snprintf(dst, sizeof dst, "%s%s", D, p + strlen(S));
  if (fl == FTW_D) { mkdir(dst, 0700); return 0; }
  if (fl != FTW_F || strstr(p, "postmaster.pid")) return 0;
  int fd = open(dst, O_CREAT | O_WRONLY, 0600); close(fd);
  off_t o = 0; do { if (np == cap) { cap = cap ? cap * 2 : 1024; pieces = realloc(pieces, cap * sizeof(piece)); }
    piece *x = &pieces[np++]; strcpy(x->src, p); strcpy(x->dst, dst); x->off = o; x->len = st->st_size - o > (64 << 20) ? (64 << 20) : st->st_size - o; o += x->len; } while (o < st->st_size);
  return 0; }
int main(int c, char **v) {
  S = v[1]; D = v[2]; int n = atoi(v[3]); int dosync = c > 4;
  nftw(S, visit, 64, FTW_PHYS);
  for (int w = 0; w < n; w++) if (fork() == 0) {
    char *buf = malloc(1 << 20);
    for (int i = w; i < np; i += n) { piece *x = &pieces[i];
      int in = open(x->src, O_RDONLY), out = open(x->dst, O_WRONLY); off_t o = x->off, end = x->off + x->len;
      while (o < end) { ssize_t r = pread(in, buf, (end - o) < (1 << 20) ? (end - o) : (1 << 20), o); if (r <= 0) break; pwrite(out, buf, r, o); o += r; }
      if (dosync) fsync(out); close(in); close(out); }
    _exit(0); }
  while (wait(NULL) > 0) {}
  return 0; }
