#!/usr/bin/env bash
# Print (or, with --run, launch one after another) the commands that reproduce a table of the papers.
#
#   launch/reproduce.sh TABLE [--run] [--seeds=N] [--jobs=J] [--extra='--config.x=y ...']
#
# TABLE is one of
#   gecc-table2     GeCC (Chen et al., AAAI 2025) Table 2: GeCC on CIFAR-10, CIFAR-100, ImageNet-10, ImageNet-Dogs
#   gecc-table3     GeCC Table 3: the ablations CC, w Aug, w DSU, w/o W, w W_c, w W_z, Ours on the same four sets
#   mfavbs-table2   MFAVBs-CC Table 2: MFAVBs-CC on its seven datasets
#   mfavbs-table4   MFAVBs-CC Table 4: VTCC, MethodA (no CLIP), MethodB (CLIP, no fusion), MFAVBs-CC
#   mfavbs-depth    MFAVBs-CC Sec. 4.6.1 / Fig. 5: depth 2, 4, 6, 8, 10 (one FAVB per two blocks), remote-sensing sets
#   mfavbs-favbs    MFAVBs-CC Sec. 4.6.2 / Fig. 6: N = 0..4 FAVBs at depth 8, remote-sensing sets
#   mfavbs-table7   MFAVBs-CC Sec. 4.7 / Table 7: MFAVBs-CC on the clean and on the masked-noise sets
#   mfavbs-table5   MFAVBs-CC Sec. 4.5 / Table 5: FLOPs and peak memory of a VTCC and a MFAVBs-CC step (ccjax bench)
#   mfavbs-table6   MFAVBs-CC Table 6: time per epoch of VTCC and MFAVBs-CC on the seven sets (ccjax bench)
#   all             every table above
#   small           the papers' claims at small scale on 2 CPU cores, each with a verdict (docs/results.md,
#                   "Claims at small scale"; ~2 hours with --seeds=5): generates the domain-shift digits, trains
#                   runs/claims-small/<row>/<dataset>/seed<k> (finished runs skipped, others resumed), measures
#                   CAM mass, nuisance NMI and k-means, writes runs/claims-small/table.md. Not part of `all`.
#                   --jobs=J runs J training runs at a time (each one's output in runs/claims-small/logs/).
# Each run writes to runs/<table>/<row>/<dataset>[/seed<k>]; docs/results.md holds the papers' numbers,
# and `python -m ccjax tables runs/<table>` puts the finished runs beside them (mean ± std over seeds).
# The cost tables (5, 6) write one benchmark JSON per row: runs/<table>/<row>/<dataset>.json.
# The datasets must be prepared first (python -m ccjax prepare --dataset=...; see docs/datasets.md).
set -euo pipefail

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
[[ $1 == -h || $1 == --help ]] && { usage; exit 0; }
table=$1; shift
run=0; seeds=1; extra=""; jobs=1
for a in "$@"; do
  case $a in
    --run) run=1 ;;
    --seeds=*) seeds=${a#--seeds=} ;;
    --jobs=*) jobs=${a#--jobs=} ;;
    --extra=*) extra=${a#--extra=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "reproduce.sh: unknown option $a" >&2; usage >&2; exit 2 ;;
  esac
done

GECC_SETS="cifar10 cifar100 imagenet10 imagenet_dogs"
MFAVBS_SETS="rsod uc_merced siri_whu aid imagenet10 cifar10 cifar100"
RS_SETS="rsod uc_merced siri_whu aid"

emit() {  # emit TABLE ROW DATASET CONFIG [overrides...]
  local tbl=$1 row=$2 ds=$3 cfg=$4; shift 4
  for ((s = 0; s < seeds; s++)); do
    local wd="runs/${tbl}/${row}/${ds}"
    [[ $seeds -gt 1 ]] && wd="${wd}/seed${s}"
    local cmd="python -m ccjax train --config=configs/${cfg}.py --workdir=${wd} --config.seed=${s} $* ${extra}"
    echo "${cmd}"
    if [[ $run == 1 ]]; then eval "${cmd}"; fi
  done
}

table_gecc2() { for ds in $GECC_SETS; do emit gecc-table2 gecc "$ds" "gecc_${ds}"; done; }

table_gecc3() {
  for ds in $GECC_SETS; do
    emit gecc-table3 cc "$ds" "cc_${ds}"
    emit gecc-table3 w_aug "$ds" "gecc_${ds}" --config.gecc.reference=aug
    emit gecc-table3 w_dsu "$ds" "gecc_${ds}" --config.gecc.reference=dsu
    emit gecc-table3 wo_w "$ds" "gecc_${ds}" --config.gecc.weights=none
    emit gecc-table3 w_wc "$ds" "gecc_${ds}" --config.gecc.weights=wc
    emit gecc-table3 w_wz "$ds" "gecc_${ds}" --config.gecc.weights=wz
    emit gecc-table3 ours "$ds" "gecc_${ds}"
  done
}

table_mfavbs2() { for ds in $MFAVBS_SETS; do emit mfavbs-table2 mfavbs "$ds" "mfavbs_${ds}"; done; }

table_mfavbs4() {
  for ds in $MFAVBS_SETS; do
    emit mfavbs-table4 vtcc "$ds" "vtcc_${ds}"
    emit mfavbs-table4 method_a "$ds" "mfavbs_${ds}" --config.anchor.enabled=False
    emit mfavbs-table4 method_b "$ds" "mfavbs_${ds}" --config.model.vit.fusion=none
    emit mfavbs-table4 mfavbs "$ds" "mfavbs_${ds}"
  done
}

table_depth() {
  for ds in $RS_SETS; do
    for d in 2 4 6 8 10; do
      emit mfavbs-depth "depth${d}" "$ds" "mfavbs_${ds}" --config.model.vit.depth=${d} --config.model.vit.num_fusing_blocks=$((d / 2))
    done
  done
}

table_favbs() {
  for ds in $RS_SETS; do
    for n in 0 1 2 3 4; do
      emit mfavbs-favbs "n${n}" "$ds" "mfavbs_${ds}" --config.model.vit.depth=8 --config.model.vit.num_fusing_blocks=${n}
    done
  done
}

bench() {  # bench TABLE ROW DATASET CONFIG: one `ccjax bench` at the config's (the paper's) settings
  local out="runs/$1/$2/$3.json"
  local cmd="mkdir -p runs/$1/$2 && python -m ccjax bench --config=configs/$4.py --json=${out} ${extra}"
  echo "${cmd}"
  if [[ $run == 1 ]]; then eval "${cmd}"; fi
}

# Sec. 4.5: batch 128, 224x224, ViT-small (E 512, 8 blocks, 8 heads), T = 198 (396 fused): the configs'.
# Table 5's memory does not depend on the dataset (every set is cropped to 224); Table 6 per dataset.
table_mfavbs5() { for m in vtcc mfavbs; do bench mfavbs-table5 "$m" cifar10 "${m}_cifar10"; done; }
table_mfavbs6() { for ds in $MFAVBS_SETS; do for m in vtcc mfavbs; do bench mfavbs-table6 "$m" "$ds" "${m}_${ds}"; done; done; }

table_mfavbs7() {
  for ds in $RS_SETS; do
    emit mfavbs-table7 mfavbs "$ds" "mfavbs_${ds}"
    emit mfavbs-table7 masked "$ds" "mfavbs_${ds}" --config.dataset.mask_noise.enabled=True
  done
}

# The runs and their overrides are ccjax/results/small_plan.py's (one list for this script and the table).
table_small() {
  local gen="python tools/domain_shift_family.py --out=runs/claims-small/data"
  echo "${gen}"
  if [[ $run == 1 ]]; then eval "${gen}"; fi
  # Two passes (the seeds' rule, ccjax/results/small_plan.py FIRST_SEEDS): the first seeds of every cell, measured;
  # then the later seeds of the cells whose spreads still overlap (chosen from what the first pass measured).
  local first
  first=$(python -c "from ccjax.results.small_plan import FIRST_SEEDS; print(min(FIRST_SEEDS, ${seeds}))")
  if [[ $run == 1 && ${seeds} -gt ${first} ]]; then small_pass "${first}"; fi
  small_pass "${seeds}"  # without --run: the one listing of what would run now
  local tables="python -m ccjax tables runs/claims-small --seeds=${seeds}"
  echo "${tables}"
  if [[ $run == 1 ]]; then eval "${tables}"; fi
}

small_pass() {  # trains what `claims_small.py commands --seeds=$1` lists (J at a time), then measures
  local n=$1 cmd wd log
  if [[ $run == 1 ]]; then mkdir -p runs/claims-small/logs; rm -f runs/claims-small/logs/*.failed; fi
  while IFS= read -r -u 3 cmd; do
    echo "${cmd}"
    [[ $run == 1 && ${cmd} != \#* ]] || continue
    if [[ $jobs -le 1 ]]; then eval "${cmd}"; continue; fi
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
    wd=${cmd##*--workdir=}; wd=${wd%% *}; log="runs/claims-small/logs/$(echo "${wd#runs/claims-small/}" | tr / _).log"
    ( eval "${cmd}" > "${log}" 2>&1 || { echo "reproduce.sh: failed, see ${log}" >&2; : > "${log}.failed"; } ) &
  done 3< <(python tools/claims_small.py commands --seeds="${n}" --extra="${extra}")
  wait
  if compgen -G "runs/claims-small/logs/*.failed" > /dev/null; then
    echo "reproduce.sh: some runs failed (see runs/claims-small/logs/*.failed); run the same command to resume them" >&2
    exit 1
  fi
  local measure="python tools/claims_small.py measure --seeds=${n}"
  echo "${measure}"
  if [[ $run == 1 ]]; then eval "${measure}"; fi
}

case $table in
  gecc-table2) table_gecc2 ;;
  gecc-table3) table_gecc3 ;;
  mfavbs-table2) table_mfavbs2 ;;
  mfavbs-table4) table_mfavbs4 ;;
  mfavbs-depth) table_depth ;;
  mfavbs-favbs) table_favbs ;;
  mfavbs-table7) table_mfavbs7 ;;
  mfavbs-table5) table_mfavbs5 ;;
  mfavbs-table6) table_mfavbs6 ;;
  small) table_small ;;
  all) table_gecc2; table_gecc3; table_mfavbs2; table_mfavbs4; table_depth; table_favbs; table_mfavbs7
       table_mfavbs5; table_mfavbs6 ;;
  *) echo "reproduce.sh: unknown table '$table'" >&2; usage >&2; exit 2 ;;
esac
