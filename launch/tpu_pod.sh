#!/usr/bin/env bash
# Train on a TPU VM pod slice: every worker runs the same command.
#
#   launch/tpu_pod.sh TPU_NAME ZONE --config=configs/gecc_imagenet10.py --workdir=gs://BUCKET/runs/gecc_in10
#
# Needs the gcloud CLI, ccjax installed on every worker (`pip install 'ccjax[tpu]'`,
# this script can do it with CCJAX_INSTALL=1), and data reachable from every
# worker (a TFDS data_dir on GCS via --config.dataset.data_dir=gs://...).
# On a multi-host slice JAX discovers the other workers itself; ccjax calls
# jax.distributed.initialize when TPU_WORKER_HOSTNAMES lists several hosts.
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 TPU_NAME ZONE train-flags..." >&2
  exit 2
fi
tpu=$1; zone=$2; shift 2
args=$(printf '%q ' "$@")
setup=""
if [[ ${CCJAX_INSTALL:-0} == 1 ]]; then
  setup="pip install -q 'ccjax[tpu] @ git+${CCJAX_REPO:?set CCJAX_REPO to the ccjax git URL}' && "
fi
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all \
  --command="${setup}cd \${CCJAX_DIR:-\$HOME} && python3 -m ccjax train ${args}"
