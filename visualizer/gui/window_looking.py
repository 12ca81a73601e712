"""Connects the window's looking tools to the session: the Health and Top patches views, and what an
inspect-only model (ONNX) cannot do. One call from the main window, after its own wiring."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Looking:
    health: object | None          # HealthPresenter
    top_patches: object | None     # TopPatchesPresenter
    training: object               # TrainingAvailability


def attach_looking(window) -> Looking:
    from .health_presenter import HealthPresenter
    from .top_patches_presenter import TopPatchesPresenter
    from .training_availability import TrainingAvailability
    from .views.health import HealthView
    from .views.top_patches import TopPatchesView

    health = next((v for v in window.views if isinstance(v, HealthView)), None)
    patches = next((v for v in window.views if isinstance(v, TopPatchesView)), None)
    return Looking(
        health=HealthPresenter(window, health) if health is not None else None,
        top_patches=TopPatchesPresenter(window, patches, window.view_docks[patches]) if patches is not None else None,
        training=TrainingAvailability(window))
