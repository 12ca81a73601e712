"""The live views: each renders snapshots only (never torch), paced by the one frame pacer, items updated in place."""
from .activations import ActivationView
from .base import View
from .curves import CurvesView
from .feature_maps import FeatureMapView
from .filters import FilterView
from .gradients import GradientView
from .health import HealthView
from .overview import OverviewStripView
from .pooling import PoolingView
from .probabilities import ProbabilityView
from .top_patches import TopPatchesView

# HealthView and TopPatchesView are fed their own records (a health report, top patches),
# not snapshots: the app wires them to the engine's answers, so they are not in ALL_VIEWS yet.
ALL_VIEWS = (FeatureMapView, OverviewStripView, FilterView, PoolingView, ActivationView, GradientView,
             ProbabilityView, CurvesView)

__all__ = ["View", "ALL_VIEWS", "FeatureMapView", "OverviewStripView", "FilterView", "PoolingView",
           "ActivationView", "GradientView", "ProbabilityView", "CurvesView", "HealthView",
           "TopPatchesView"]
