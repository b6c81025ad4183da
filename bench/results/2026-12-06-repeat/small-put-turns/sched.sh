#!/usr/bin/env bash
# Run-queue waits per task from `perf sched record -a -o FILE -- sleep 5` taken during one row:
# bash sched.sh FILE  -> per task: wakeups (sched-ins), sum of scheduling delay, run time (ms).
perf sched timehist -i "$1" 2>/dev/null | awk 'NR>3 {comm=$3; n[comm]++; d[comm]+=$5; r[comm]+=$6}
  END {for (k in n) if (r[k] > 20) printf "%-28s sched-ins %5d  delay %7.1f ms (avg %.3f)  run %7.1f ms\n", k, n[k], d[k], d[k]/n[k], r[k]}' | sort -k7 -n -r
