#!/usr/bin/env bash
# Exports made by the code at an older commit, then predicted, evaluated, fine-tuned and served
# by the code of this checkout. Usage: bash bench/old_exports.sh OLD_COMMIT [OUT_DIR]
# (a git worktree of OLD_COMMIT is made in OUT_DIR/old; ../shared must sit beside the repo).
set -u
export TF_CPP_MIN_LOG_LEVEL=2
HERE=$(cd "$(dirname "$0")/.." && pwd); D=$(cd "$HERE/../shared/data" && pwd)
export KERAS_HOME="$D/../keras_home"
OLD=${1:?usage: old_exports.sh OLD_COMMIT [OUT_DIR]}; OUT=${2:-/tmp/seqtasks-old-exports}
rm -rf "$OUT"; mkdir -p "$OUT"; git -C "$HERE" worktree add -f "$OUT/old" "$OLD" -q
head -401 $D/sst2/train.tsv > $OUT/sst2.tsv
TINY="--set vocabulary_size=300 --set sequence_length=24 --set embedding_dim=8 --set hidden_dim=8 --set num_heads=2 --set intermediate_dim=8"
cd "$OUT/old"
echo "== old: train sentiment"; python cli.py train sentiment --data $OUT/sst2.tsv --epochs 1 $TINY --export-dir $OUT/models/sentiment --run-dir $OUT/runs/s -q > /dev/null 2>$OUT/old_s.err || tail -3 $OUT/old_s.err
echo "== old: train translation"; python cli.py train translation --data $D/multi30k --source-lang en --target-lang de --max-examples 300 --epochs 1 --set vocabulary_size=300 --set sequence_length=24 --set hidden_dim=16 --set intermediate_dim=16 --set embedding_dim=16 --set num_heads=2 --set num_layers=1 --set beam_size=2 --export-dir $OUT/models/translation --run-dir $OUT/runs/t -q > /dev/null 2>$OUT/old_t.err || tail -3 $OUT/old_t.err
echo "== old: train captioning"; python cli.py train captioning --data $D/flickr8k --max-examples 40 --epochs 1 --set encoder=cnn --set image_size=32 --set vocabulary_size=200 --set hidden_dim=8 --set embedding_dim=8 --set beam_size=1 --export-dir $OUT/models/captioning --run-dir $OUT/runs/c -q > /dev/null 2>$OUT/old_c.err || tail -3 $OUT/old_c.err
ls $OUT/models/*
cd "$HERE"
echo "== new: predict"; python cli.py predict $OUT/models/sentiment "a moving film" "dull" --json | head -c 300; echo
python cli.py predict $OUT/models/translation "A dog runs." --json | head -c 300; echo
echo "== new: evaluate"; python cli.py evaluate $OUT/models/sentiment --data $D/sst2/dev.tsv --max-examples 50 --json | head -c 200; echo
python cli.py evaluate $OUT/models/translation --data $D/multi30k --split val --max-examples 20 --json | head -c 200; echo
echo "== new: finetune"; python cli.py finetune $OUT/models/sentiment --data $OUT/sst2.tsv --epochs 1 --run-dir $OUT/runs/fs -q --json | head -c 200; echo
python cli.py finetune $OUT/models/translation --data $D/multi30k --source-lang en --target-lang de --max-examples 200 --epochs 1 --run-dir $OUT/runs/ft -q --json | head -c 200; echo
python cli.py finetune $OUT/models/captioning --data $D/flickr8k --max-examples 30 --epochs 1 --run-dir $OUT/runs/fc -q --json | head -c 200; echo
ls $OUT/models/*
D="$D" OUT="$OUT" python - <<'PY'
import os, tarfile
t = tarfile.open(os.path.join(os.environ["D"], "flickr8k", "Flicker8k_Dataset_160px_train_dev.tar"))
for m in t:
    if m.name.endswith(".jpg"):
        open(os.path.join(os.environ["OUT"], "img.jpg"), "wb").write(t.extractfile(m).read())
        break
PY
echo "== new: predict captioning"; python cli.py predict $OUT/models/captioning $OUT/img.jpg --json | head -c 300; echo
echo "== new: serve the old version 1 of each model"
mkdir -p $OUT/served; for m in sentiment translation captioning; do mkdir -p $OUT/served/$m; cp -r $OUT/models/$m/1 $OUT/served/$m/1; done
python cli.py serve $OUT/served --port 8599 --poll-seconds 0 > $OUT/serve.log 2>&1 &
PID=$!
for i in $(seq 60); do curl -s localhost:8599/v1/models/sentiment > /dev/null && break; sleep 1; done
curl -s -X POST localhost:8599/v1/models/sentiment:predict -d '{"instances": ["great film", "dull"]}'; echo
curl -s -X POST localhost:8599/v1/models/translation:predict -d '{"instances": ["A dog runs."]}'; echo
curl -s -X POST localhost:8599/v1/models/captioning:predict -d "{\"instances\": [{\"b64\": \"$(base64 -w0 $OUT/img.jpg)\"}]}"; echo
kill $PID
git -C "$HERE" worktree remove --force "$OUT/old"
