#!/usr/bin/env bash
# Maintainers: train further seeds of the zoo models that the paper claims rest on, each as long as the
# shipped zoo's model (the commands of zoo/MANIFEST.json with --seed S), and file each in a zoo folder of
# its own, OUT/zoo<S>, so that `eyegen zoo spread --pretrained --zoo-for-seed S OUT/zoo<S> …` measures
# every claim's seed-to-seed spread at the length its margin is reported at (issue 31).
#
#   benchmarks/claim_spread_seeds.sh OUT GROUP SEED...     GROUP: refiner | deepwarp | seg2eye | gaze_gan
#
# DEEPWARP_VARIANTS="cfw_lcm cfw" (default: all six that 05's claims compare) trains some of them first.
#
# Resumable at two levels: `eyegen train` resumes a model from its last saved state, and a model that
# reached its zoo folder (a marker OUT/zoo<S>/.added_<name>) is skipped. One thread per training, so
# that a second core stays free. The models need not ship; their MANIFEST records (command, steps,
# sha256, figures) are what `eyegen zoo spread` and zoo/cpu/spread_models.json keep.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 OUT GROUP SEED...   (GROUP: refiner | deepwarp | seg2eye | gaze_gan)" >&2
    exit 2
fi
case $2 in
    refiner|deepwarp|seg2eye|gaze_gan) ;;
    *) echo "unknown GROUP $2: refiner | deepwarp | seg2eye | gaze_gan" >&2; exit 2 ;;
esac
OUT=$(mkdir -p "$1" && cd "$1" && pwd); GROUP=$2; shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EG=${EG:-$ROOT/.venv/bin/eyegen}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

# train_and_add SEED NAME FILE TRAINARGS...: train (resuming) and file FILE as NAME in OUT/zoo<SEED>
train_and_add() {
    local seed=$1 name=$2 file=$3; shift 3
    local zoo=$OUT/zoo$seed marker="$OUT/zoo$seed/.added_${name//\//_}"
    mkdir -p "$zoo"
    [ -e "$marker" ] && { echo "seed $seed: $name already in $zoo"; return 0; }
    echo "$(date -u +%FT%TZ) seed $seed: eyegen train $*"
    # a --pretrained training takes the seed's own upstream models (the segmenter of the refiner, …)
    EYEGEN_ZOO_DIR=$zoo "$EG" train "$@" --seed "$seed" --out "$OUT" --quiet
    "$EG" zoo add "$OUT/checkpoints/cpu/seed$seed/$file" --name "$name" --folder "$zoo" \
        --command "eyegen train $* --seed $seed"
    touch "$marker"
    echo "$(date -u +%FT%TZ) seed $seed: $name filed"
}

for S in "$@"; do
    case $GROUP in
    refiner)
        train_and_add "$S" segmenter segmenter.pt segmenter --profile cpu --steps 3000
        train_and_add "$S" refiner refiner.pt refiner --profile cpu --steps 3000 --pretrained ;;
    deepwarp)  # the variants 05's claims compare (Fig. 6's order, Table 1, the registration-aware loss)
        for V in ${DEEPWARP_VARIANTS:-cfw_lcm cfw ms ss ss_shifted_k0 ss_shifted_k3}; do
            train_and_add "$S" "deepwarp/$V" "deepwarp_$V.pt" deepwarp --profile cpu --variant "$V" --steps 4000
        done ;;
    seg2eye)
        train_and_add "$S" seg2eye/full seg2eye_full.pt seg2eye --profile cpu --steps 6000 --keep-at 600 2000
        [ -e "$OUT/zoo$S/.added_seg2eye_full@600" ] || {
            "$EG" zoo add "$OUT/checkpoints/cpu/seed$S/seg2eye_full.step600.pt" --name seg2eye/full@600 \
                --folder "$OUT/zoo$S" --command "eyegen train seg2eye --profile cpu --steps 6000 --keep-at 600 2000 --seed $S"
            touch "$OUT/zoo$S/.added_seg2eye_full@600"; }
        [ -e "$OUT/zoo$S/.added_seg2eye_reference" ] || {
            "$EG" zoo add "$OUT/checkpoints/cpu/seed$S/seg2eye_full.step2000.pt" --name seg2eye/reference \
                --as-variant reference --folder "$OUT/zoo$S" \
                --command "eyegen train seg2eye --profile cpu --steps 6000 --keep-at 600 2000 --seed $S (its step-2000 snapshot)"
            touch "$OUT/zoo$S/.added_seg2eye_reference"; }
        for V in gaugan mean_aggregation no_style_consistency; do
            train_and_add "$S" "seg2eye/$V" "seg2eye_$V.pt" seg2eye --profile cpu --variant "$V" --steps 2000
        done ;;
    gaze_gan)
        train_and_add "$S" gaze_gan/full gaze_gan_full.pt gaze_gan --profile cpu --steps 3000 \
            --keep-at 1000 1500 2000 2500 --pretrained
        for V in no_cycle no_gaze no_identity no_perceptual no_target; do
            train_and_add "$S" "gaze_gan/$V" "gaze_gan_$V.pt" gaze_gan --profile cpu --variant "$V" --pretrained
        done ;;
    esac
done
