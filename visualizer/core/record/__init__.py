"""Recording a training run: one record encoding, run files, and the live stream.

Import-light on purpose: the GUI process reads run files and streams without
torch, so nothing in this package imports torch (or Qt). Import the pieces from
their modules: ``encoding`` (encode_record/decode_record), ``runfile``
(RunWriter/RunReader), ``stream`` (StreamServer/StreamClient).
"""
