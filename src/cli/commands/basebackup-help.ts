// `pgpitr basebackup --help`: pg_basebackup's option list, with pgpitr's additions marked.

export const BASEBACKUP_HELP = `pgpitr basebackup takes a base backup of a running PostgreSQL server.
It accepts pg_basebackup's options with the same meanings.

Usage:
  pgpitr basebackup [OPTION]...

Options controlling the output:
  -D, --pgdata=DIRECTORY receive base backup into directory ("-" with -F tar: stdout)
  -F, --format=p|t       output format (plain (default), tar)
  -r, --max-rate=RATE    maximum transfer rate to transfer data directory
                         (in kB/s, or use suffix "k" or "M")
  -R, --write-recovery-conf
                         write configuration for replication (standby.signal)
  -t, --target=TARGET[:DETAIL]
                         backup target (server:PATH or blackhole; PostgreSQL 15+)
  -T, --tablespace-mapping=OLDDIR=NEWDIR
                         relocate tablespace in OLDDIR to NEWDIR
      --waldir=WALDIR    location for the write-ahead log directory
  -X, --wal-method=none|fetch|stream
                         include required WAL files with specified method (default stream)
  -z, --gzip             compress tar output
  -Z, --compress=[{client|server}-]METHOD[:DETAIL]
                         compress on client or server as specified (gzip, lz4, zstd)
  -Z, --compress=none    do not compress tar output

General options:
  -c, --checkpoint=fast|spread
                         set fast or spread (default) checkpointing
  -C, --create-slot      create replication slot
  -l, --label=LABEL      set backup label
  -j, --jobs=N           (pgpitr) read the files with N workers of pgpitr's own instead of
                         the server's BASE_BACKUP (the backup is registered with
                         pg_backup_start/pg_backup_stop; the manifest is kept; -X fetch
                         streams the WAL as -X stream does)
      --read-method=auto|direct|sql
                         (pgpitr) with -j: read the data directory on this host (direct),
                         or through the server's SQL file functions (sql); auto: direct
                         when this host has the data directory
      --resume           (pgpitr) with -j -Fp and the direct read method: take over the
                         interrupted backup in the target directory (killed, or failed with -n),
                         keeping the files it copied whose source has not changed since (each
                         checked against its checksum)
  -n, --no-clean         do not clean up after errors
  -N, --no-sync          do not wait for changes to be written safely to disk
      --sync-method=fsync|syncfs  accepted as pg_basebackup 17's: each file written is synced either way
  -P, --progress         show progress information
      --progress-format=text|json
                         (pgpitr) progress as a line (text) or JSON lines on stderr; implies -P
  -S, --slot=SLOTNAME    replication slot to use
  -v, --verbose          output verbose messages
  -V, --version          output version information, then exit
      --manifest-checksums=SHA{224,256,384,512}|CRC32C|NONE
                         use algorithm for manifest checksums
      --manifest-force-encode
                         hex encode all file names in manifest
      --no-estimate-size do not estimate backup size in server side
      --no-manifest      suppress generation of backup manifest
      --no-slot          prevent creation of temporary replication slot
      --no-verify-checksums
                         do not verify checksums
  -?, --help             show this help, then exit

Connection options:
  -d, --dbname=CONNSTR   connection string (key=value or postgresql:// URI)
  -h, --host=HOSTNAME    database server host or socket directory
  -p, --port=PORT        database server port number
  -s, --status-interval=INTERVAL
                         time between status packets sent to server (in seconds)
  -U, --username=NAME    connect as specified database user
  -w, --no-password      never prompt for password
  -W, --password         force password prompt (should happen automatically)

pgpitr writes ${'pgpitr_backup.state'} into the target directory: "running" while the
backup runs, "complete" once every file is synced. Check it with "pgpitr status DIR".
Exit codes: 0 success, 2 invalid options, 3 connection failed, 4 server error,
5 target or disk error, 6 object not found, 9 connection lost midway, 130 interrupted.
`;
