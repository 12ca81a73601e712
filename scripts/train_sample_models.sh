#!/usr/bin/env bash
# Reproduces the shipped sample models in models/ from a seed (deterministic on CPU:
# the same command gives bit-identical weights). All three data sets are built in (resources/data).
set -euo pipefail
cd "$(dirname "$0")/.."
./dev setup
cv=.venv/bin/cnn-visualizer
# One thread: the weights depend on the thread count (torch splits its reductions per thread).
export OMP_NUM_THREADS=1
# LeNet-5 on the shipped MNIST test split (the app's default sample): 8,000 digits to train,
# 2,000 held out (98.7% on them).
$cv train --arch lenet5 --dataset mnist --epochs 12 --optimizer adam --lr 0.002 --schedule cosine \
  --val-fraction 0.2 --augment --seed 0 --out models/lenet5_mnist.pt
# LeNet-5 on the built-in UCI 8x8 digits (the tiny set): 99.7% on 360 held-out digits.
$cv train --arch lenet5 --dataset digits --epochs 30 --optimizer adam --lr 0.002 --schedule cosine \
  --val-fraction 0.2 --augment --seed 0 --out models/lenet5_digits.pt
# A small CNN on the generated RGB shapes: 90% on 600 held-out shapes.
$cv train --arch simplecnn --dataset shapes --epochs 30 --optimizer adam --lr 0.002 --weight-decay 0.0005 \
  --schedule cosine --val-fraction 0.2 --seed 0 --slim --out models/simplecnn_shapes.pt
