# rst.sh NAME PORT BINDIR DEST DESTPORT TARGETOPTS...
. /tmp/bbP/env.sh
n=$1; port=$2; bin=$3; d=$4; dport=$5; shift 5
rm -rf $B/$d; mkdir -p $B/$d
P restore --repo $B/repo --stanza $n -D $B/$d/data --spool-path $B/rspool --target-action promote --archive-mode off "$@"; echo "restore rc=$?"
echo "port=$dport" >> $B/$d/data/postgresql.auto.conf
$bin/pg_ctl -D $B/$d/data -l $B/$d/log -w -t 120 start >/dev/null || { echo START FAILED; tail -20 $B/$d/log; }
for i in $(seq 60); do [ "$(Q $dport 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && break; sleep 1; done
Q $dport "select count(*)||'/'||sum(abalance)||'/'||(select count(*)||':'||coalesce(max(label),'') from marker) from pgbench_accounts"
grep -E 'recovery stopping|FATAL|PANIC|LOG:  redo done|archive recovery complete' $B/$d/log | head
$bin/pg_ctl -D $B/$d/data -m immediate stop >/dev/null
