"""What each channel looks for: receptive fields and the dataset patches that excite a channel most.

The top level is torch-free (the records), so the GUI process can import it; the
computations are in ``receptive_field`` and ``top_patches`` (torch).
"""
from .records import ChannelPatches, ReceptiveField, TopPatches

__all__ = ["ChannelPatches", "ReceptiveField", "TopPatches"]
