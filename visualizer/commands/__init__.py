"""The command line's subcommands, one module each (``info``, ``render``, ``train``, ``health``, ``models``).

Each module has ``add_parser(subparsers)`` and ``run(args) -> int``; ``visualizer/cli.py``
assembles them and turns every failure into one line. The model a command works on is
named the same way everywhere (``model_arguments.py``). Modules import torch only inside
their functions: ``cnn-visualizer`` with no command starts the desktop app through here.
"""
