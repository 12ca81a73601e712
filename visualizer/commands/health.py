"""``cnn-visualizer health MODEL``: dead, saturated, vanishing, exploding and not-learning layers on a batch."""
from __future__ import annotations

import os
import sys

from .model_arguments import add_model_arguments, choose_model
from .model_data import open_with_data, saved_config


def add_parser(sub) -> None:
    h = sub.add_parser("health", help="check every layer for dead, saturated, vanishing, exploding or "
                       "not-learning units on a batch of data")
    add_model_arguments(h)
    h.add_argument("--dataset", default=None, help="data to measure on (default: the checkpoint's own "
                   "data set; digits for a zoo name)")
    h.add_argument("--samples", type=int, default=256, help="batch size of the measurement (at least 256)")
    h.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw"),
                   help="optimizer of the one throw-away step (default: the checkpoint's, else sgd)")
    h.add_argument("--lr", type=float, default=None, help="its learning rate (default: the checkpoint's, else 0.01)")
    h.add_argument("--seed", type=int, default=0, help="which samples are drawn (and a fresh model's weights)")
    h.add_argument("--json", action="store_true", help="one JSON object per layer instead of the table")


def run(args) -> int:
    import torch

    from ..core.health.measure import health_batch, measure_health
    from ..core.health.text import format_health_table, health_json_lines
    from ..core.inspector import Inspector

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    choice = choose_model(args, "health")
    looked = open_with_data(choice, args.dataset, seed=args.seed, required=True)
    bundle, data = looked.bundle, looked.data
    config = saved_config(bundle)
    if args.optimizer:
        config.optimizer = args.optimizer
        if args.lr is None and not isinstance(bundle.meta.get("config"), dict):
            config.lr = 0.01 if args.optimizer == "sgd" else 0.001
    if args.lr is not None:
        config.lr = args.lr
    config.validate()
    x, y = health_batch(data, args.samples, seed=args.seed)
    with Inspector(bundle) as inspector:
        report = measure_health(inspector, x, y, config=config)
    if args.json:
        print(health_json_lines(report))
    else:
        print(format_health_table(report, f"health of {choice.text} on {looked.dataset_name}"))
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
