#!/usr/bin/env bash
# Rebuild the bundled default model (g2m_hf/default_model) from the repository root:
#   bash training/build_default_model.sh                  # fine-tune from the bundled base model
#   REBUILD_BASE=1 bash training/build_default_model.sh   # pretrain the base model (stage 1) first
#   REBUILD_JUDGES=1 bash training/build_default_model.sh # retrain the bundled style judges too
# Steps: encode the music21 corpus (general material, and Bach / Beethoven / Mozart), [pretrain and
# package g2m_hf/default_base_model,] fine-tune, [train the judges,] distil the style guidance into the model,
# measure infilling, then package the final files with loss curves, evaluation, the composers' texture table and
# model card.
# On 2 idle CPU cores (measured): dataset encoding 35 min the first time (general 21, mastery 13; cached
# in data/cache), pretraining 75 min (7000 steps of 4 windows, 2310 events/s), fine-tuning ~33 min
# (~1.8-2 s per step), the judges ~20-25 min (REBUILD_JUDGES=1 only), guidance distillation ~7 min, the infilling
# evaluation ~3 min, evaluation and packaging ~8 min: about 1 h 30 from the bundled base, about 2 h 45 with
# REBUILD_BASE=1. An interrupted run picks up
# where it stopped (datasets already built are kept; training resumes from its last checkpoint, and the
# record counts every leg).
# PYTHON=... picks the interpreter; extra arguments go to the training scripts (e.g. --max_steps 20).
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
NUM_PROC=${NUM_PROC:-2}
# 2 threads on an idle machine; when other jobs share the cores, OMP_NUM_THREADS=1 is several times faster.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# Every music21 collection except the three composers the model masters: the generality material
# (Composer_None). Bach, Beethoven and Mozart are kept for the mastery stage and its held-out pieces.
GENERAL="airdsAirs beach chopin ciconia corelli cpebach demos essenFolksong handel haydn johnson_j_r
  joplin josquin leadSheet liliuokalani luca lusitano miscFolk monteverdi nottingham-dataset oneills1850
  palestrina ryansMammoth schoenberg schubert schumann_clara schumann_robert theoryExercises trecento
  verdi weber webern"

if [ ! -e data/general/dataset_dict.json ]; then
  "$PYTHON" training/build_dataset.py --music21 --general $GENERAL \
    --output data/general --num-proc "$NUM_PROC" --cache-dir data/cache
fi
# --test-fraction 0.2: a fifth of each composer's pieces is reference music that no training and no
# checkpoint selection sees (the classifiers' held-out accuracy, the model's comparison with real music)
if [ ! -e data/mastery/test ]; then
  "$PYTHON" training/build_dataset.py --music21 --composers bach beethoven mozart --test-fraction 0.2 \
    --output data/mastery --num-proc "$NUM_PROC" --cache-dir data/cache --overwrite
fi

# Stage 1 ships as g2m_hf/default_base_model (the base the fine-tuning recipe starts from), so a rebuild
# of the composer model retrains it only when asked (REBUILD_BASE=1) or when it is missing.
if [ "${REBUILD_BASE:-0}" = 1 ] || [ ! -e g2m_hf/default_base_model/model.safetensors ]; then
  "$PYTHON" training/pretrain.py --config configs/default_pretrain.yaml --resume "$@"
  "$PYTHON" training/package_base_model.py --pretrained outputs/default_pretrain \
    --output g2m_hf/default_base_model --overwrite
fi
"$PYTHON" training/finetune.py --config configs/default_finetune.yaml --resume "$@"

# the judges of style: the paper's Transformer classifier and the independent feature classifier. They learn
# the real pieces only (not the composer model), so they are retrained when asked (REBUILD_JUDGES=1) or missing.
if [ "${REBUILD_JUDGES:-0}" = 1 ] || [ ! -e g2m_hf/default_classifier/model.safetensors ]; then
  "$PYTHON" training/train_classifier.py --config configs/default_classifier.yaml --resume
  "$PYTHON" training/fit_feature_classifier.py --dataset data/mastery --output outputs/feature_classifier.safetensors --overwrite
  "$PYTHON" training/package_default_classifier.py --classifier outputs/default_classifier \
    --features outputs/feature_classifier.safetensors --data data/mastery --output g2m_hf/default_classifier --overwrite
fi

# guidance distillation: the fine-tuned model's style guidance 2 against the other composers (what won the
# comparison of docs/texture.md#defaults) taught to the model itself, so that it samples the guided style with one
# row per piece instead of three (docs/speed.md#guidance-distillation). Redone whenever the fine-tuning is newer.
if [ ! -e outputs/default_distilled/model.safetensors ] || \
   [ outputs/default_finetune/model.safetensors -nt outputs/default_distilled/model.safetensors ]; then
  "$PYTHON" training/distill_guidance.py --model outputs/default_finetune --dataset data/mastery \
    --style-guidance 2 --style-guidance-contrast composers --output outputs/default_distilled --overwrite
fi

# bar infilling on the held-out test pieces: 4-bar gaps, infilled against the real bars and continuation (the
# model and sampling the folder gets below); its figures go into the folder and its card
"$PYTHON" training/infill_eval.py --model outputs/default_distilled --dataset data/mastery --split test \
  --temperature 1.0 --top-p 0.95 --style-guidance 1 --output outputs/infill_evaluation.json

# the distilled weights at temperature 1.0 / top-p 0.95, sampled without guidance (it is in the weights: style
# guidance 2 pushing each composer away from the other two, not from Composer_None, whose push made Mozart three
# times too busy and sank long pieces into the bass; a user who raises the scale pushes against the composers
# too), with texture steering 1 holding each bar to its planned levels: what won the comparisons of
# docs/texture.md#defaults and docs/speed.md#guidance-distillation (benchmarks/texture_guidance.py: recognition
# by both judges, texture, register of 64-bar pieces, CPU time per bar)
"$PYTHON" training/package_default_model.py \
  --pretrained g2m_hf/default_base_model --finetuned outputs/default_finetune --distilled outputs/default_distilled \
  --reference-data data/mastery --evaluation-dir outputs/default_evaluation \
  --infill-evaluation outputs/infill_evaluation.json \
  --style-guidance 1 --style-guidance-contrast composers --texture-steering 1 \
  --temperature 1.0 --top-p 0.95 --output g2m_hf/default_model --overwrite
