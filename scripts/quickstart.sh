#!/usr/bin/env bash
# The quick start: set up, then run the main job on the embedded defaults (SQLite, tasks in-process, the Set5 copy
# shipped in data/datasets): benchmark nn, bicubic and the shipped srresnet-mse and srgan-mse weights on Set5, print
# the PSNR/SSIM table beside the paper's, create a demo MOS study of the four methods plus HR and print the rater
# link. With a terminal attached it then serves the app on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python

METHODS=nn,bicubic,srresnet-mse,srgan-mse
# The perceptual metrics that need no downloaded weights, where the 'metrics' extra is installed (the default set-up
# installs it): the demo study's results page then says which metric agrees with the raters.
METRICS=psnr,ssim
if $PY -c "import piq" 2>/dev/null; then METRICS=$METRICS,ms_ssim,gmsd,vif,fsim,niqe; fi
echo "==> benchmark: $METHODS x4 on Set5 (metrics: $METRICS)"
$PY manage.py run_benchmark --datasets Set5 --methods $METHODS --metrics $METRICS

echo "==> where the methods' weights come from"
$PY -m benchmarks list | sed -n '/^methods:/,$p'

if $PY manage.py help create_study >/dev/null 2>&1; then
  echo "==> demo MOS study"
  $PY manage.py create_study --name demo --datasets Set5 --methods $METHODS --include-hr --calibration-images 2 --exist-ok
fi

if [ -t 0 ] && [ -t 1 ]; then
  echo "==> serving on http://127.0.0.1:8000/ (Ctrl-C stops; researcher pages need: $PY manage.py createsuperuser)"
  exec $PY manage.py runserver 127.0.0.1:8000
else
  echo "==> to open the study: $PY manage.py runserver 127.0.0.1:8000, then the link above"
fi
