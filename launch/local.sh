#!/usr/bin/env bash
# N cooperating processes on this machine (what the multi-process tests use).
#
#   launch/local.sh NUM_PROCESSES [DEVICES_PER_PROCESS] -- python -m ccjax train --config=configs/cc_digits.py
#
# Each process gets CCJAX_COORDINATOR / CCJAX_NUM_PROCESSES / CCJAX_PROCESS_ID,
# which ccjax.runtime.distributed passes to jax.distributed.initialize. On CPU,
# DEVICES_PER_PROCESS fake devices are made per process (JAX_NUM_CPU_DEVICES);
# on a GPU machine set CUDA_VISIBLE_DEVICES per process yourself or use one
# process for all local GPUs. Output of process i goes to stdout prefixed [i],
# without Gloo's "[Gloo] Rank i is connected to ..." lines (CCJAX_VERBOSE=1 keeps them).
# If one process fails, the others are stopped and the exit code is non-zero.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 NUM_PROCESSES [DEVICES_PER_PROCESS] -- COMMAND..." >&2
  exit 2
fi
nproc_=$1; shift
devs=""
if [[ $1 != "--" ]]; then devs=$1; shift; fi
[[ $1 == "--" ]] || { echo "$0: expected -- before the command" >&2; exit 2; }
shift

port=${CCJAX_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
quiet='/^\[Gloo\] Rank [0-9]* is connected to /d'  # the CPU collectives' start-up chatter
[[ ${CCJAX_VERBOSE:-0} == 1 ]] && quiet=''
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup INT TERM

for ((i = 0; i < nproc_; i++)); do
  (
    export CCJAX_COORDINATOR="127.0.0.1:${port}" CCJAX_NUM_PROCESSES="$nproc_" CCJAX_PROCESS_ID="$i"
    [[ -n $devs ]] && export JAX_NUM_CPU_DEVICES="$devs"
    exec "$@"
  ) > >(sed -u -e "${quiet}" -e "s/^/[$i] /") 2>&1 &
  pids+=($!)
done

status=0
for p in "${pids[@]}"; do
  if ! wait "$p"; then status=1; cleanup; fi
done
exit $status
