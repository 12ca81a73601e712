"""The health report as text: the command line's table and its ``--json`` lines (no torch)."""
from __future__ import annotations

import json

from .records import FIGURE_LABELS, FIGURES, HealthReport, format_figure, rules_for

COLUMN_TITLES = {
    "dead_fraction": "dead", "saturated_fraction": "saturated", "act_mean": "mean", "act_std": "std",
    "grad_norm": "‖∇W‖", "grad_relative": "∇ vs largest", "update_ratio": "‖ΔW‖/‖W‖",
}


def threshold_text(report: HealthReport, figure: str) -> str:
    """"> 50%", "> 1000 | < 1e-06": every threshold of one figure, as a table's second header row."""
    return " | ".join(r.text(report.thresholds) for r in rules_for(figure))


def format_health_table(report: HealthReport, title: str = "") -> str:
    """A readable table: one row per layer, thresholds under each figure's title, then what to try."""
    head = ["layer", "kind", *(COLUMN_TITLES[f] for f in FIGURES), "flags"]
    limits = ["", "(flag when)", *(threshold_text(report, f) for f in FIGURES), ""]
    rows = [head, limits]
    for layer in report.layers:
        kind = layer.kind if layer.function is None else layer.function
        if layer.trainable is False:
            kind += " (frozen)"
        rows.append([layer.name, kind, *(format_figure(getattr(layer, f), f) for f in FIGURES),
                     ", ".join(layer.flags) or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    numeric = range(2, 2 + len(FIGURES))
    lines = ["  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(2, "-" * max(len(line) for line in lines))
    out = [title] if title else []
    out += lines
    out.append("")
    out.append(f"{report.samples} samples; ‖ΔW‖/‖W‖ from {report.optimizer}" if report.optimizer
               else f"{report.samples} samples")
    flagged = report.flagged()
    if not flagged:
        out.append(f"no flags: all {len(report.layers)} layers are within their thresholds")
    else:
        out.append(f"{len(flagged)} of {len(report.layers)} layers flagged; what to try:")
        for layer in flagged:
            out.append(f"  {layer.name}: {layer.flag}: {layer.advice[0]}")
            for flag, advice in zip(layer.flags[1:], layer.advice[1:]):
                out.append(f"  {' ' * len(layer.name)}  also {flag}: {advice}")
    return "\n".join(out)


def health_json_lines(report: HealthReport) -> str:
    """One JSON object per layer, one per line: figures, the thresholds they were judged by, flags, advice."""
    return "\n".join(json.dumps(layer.to_dict(), ensure_ascii=False) for layer in report.layers)


__all__ = ["COLUMN_TITLES", "FIGURE_LABELS", "format_health_table", "health_json_lines", "threshold_text"]
