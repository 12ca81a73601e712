"""The live views: each renders snapshots only (never torch), throttled, items updated in place."""
from .activations import ActivationView
from .base import View
from .curves import CurvesView
from .feature_maps import FeatureMapView
from .filters import FilterView
from .gradients import GradientView
from .overview import OverviewStripView
from .pooling import PoolingView
from .probabilities import ProbabilityView

ALL_VIEWS = (FeatureMapView, OverviewStripView, FilterView, PoolingView, ActivationView, GradientView,
             ProbabilityView, CurvesView)

__all__ = ["View", "ALL_VIEWS", "FeatureMapView", "OverviewStripView", "FilterView", "PoolingView",
           "ActivationView", "GradientView", "ProbabilityView", "CurvesView"]
