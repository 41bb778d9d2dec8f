#!/usr/bin/env bash
# FER2013 recipe ablation (issue 19): the configs/fer2013.yaml vgg recipe at one short budget
# (8 epochs, seed 0), once as it is and once with each ingredient, each evaluated on the val
# split with flip TTA (the baseline and crop_erase also with five-crop TTA); then the table.
#   bash benchmarks/fer2013_ablation.sh OUT [DATA_ROOT]      (DATA_ROOT default ../shared/data)
# Each training takes 12-14 min of epochs with THREADS=1 beside one other training on a 2-core
# CPU (session 12: the whole script 61 min); the table's last column is each run's epoch time.
set -euo pipefail
out=$1; data=${2:-../shared/data}; threads=${THREADS:-2}
mkdir -p "$out"
[[ -f $out/index.csv ]] || kerascv-emotion index "$data/fer2013" --out "$out/index.csv" --format fer2013 \
    --val-fraction 0.0 --test-fraction 0.0 --seed 0
recipe=(--image-size 48 --channels 1 --epochs 8 --lr 0.001 --optimizer adam --lr-schedule cosine --warmup-epochs 1
        --weight-decay 0.0 --label-smoothing 0.1 --arch-option dropout=0.2 --arch-option pool_dropout_rate=0.0
        --batch-size 64 --augment paper_face --seed 0 --on-bad-image skip --precise-bn-images 512 --threads "$threads")
run() {  # NAME [flags over the recipe]
    local name=$1; shift
    kerascv-emotion train --index "$out/index.csv" --arch vgg --out "$out/$name" "${recipe[@]}" "$@"
    kerascv-emotion evaluate "$out/$name" --index "$out/index.csv" --split val --tta hflip --threads "$threads"
    cp "$out/$name/eval/val/metrics.json" "$out/$name.metrics-hflip.json"
}
crops() {  # NAME: five-crop TTA too (after run's flip evaluation)
    kerascv-emotion evaluate "$out/$1" --index "$out/index.csv" --split val --tta crops --threads "$threads"
    cp "$out/$1/eval/val/metrics.json" "$out/$1.metrics-crops.json"
}
run base
crops base
run ema --ema-momentum 0.999
run crop_erase --augment crop_erase
crops crop_erase
run mix --mixup-alpha 0.2 --cutmix-alpha 1.0
python "$(dirname "$0")/runs_table.py" "$out"/*.metrics-*.json
