#!/usr/bin/env bash
# The runs that produced the weights in sr_models/weights/ (docs/training.md, "Shipped weights"): SRResNet-MSE with
# the paper's recipe on train_demo, then SRGAN-MSE from it (k = 1 alternation, the paper's discriminator), both on
# the CPU. Each stage is resumable: run the script again and it continues from the stage's latest checkpoint.
#   STAGE=srresnet STEPS=N bash scripts/train_shipped_weights.sh    (then STAGE=srgan INIT=<srresnet checkpoint>)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
DATA=${DATA:-../shared/datasets}
PY=.venv/bin/python
common=(--data "$DATA/train_demo" --val-data-dir "$DATA" --num-workers 0 --cache-images --channels-last
        --log-every 50 --keep-last 2 --no-progress)
case "${STAGE:-srresnet}" in
  srresnet) OUT=runs/srresnet-mse-cpu
            args=(--preset srresnet-mse --zero-init-residual --val-every 500 --checkpoint-every 250) ;;
  srgan)    OUT=runs/srgan-mse-cpu
            args=(--preset srgan-mse --init "${INIT:?give INIT=the SRResNet-MSE checkpoint}" --val-every 100
                  --checkpoint-every 50 --log-every 10) ;;
  *) echo "STAGE must be srresnet or srgan" >&2; exit 2 ;;
esac
latest=$(ls "$OUT"/checkpoints/step_*.pt 2>/dev/null | sort | tail -1 || true)
if [ -n "$latest" ]; then
  exec $PY -m sr_models train --resume "$latest" --steps "${STEPS:-200000}" --no-progress
fi
exec $PY -m sr_models train "${common[@]}" "${args[@]}" --output-dir "$OUT" --steps "${STEPS:-200000}"
