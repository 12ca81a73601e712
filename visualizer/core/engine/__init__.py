"""One engine for every way of training and looking at a model (no Qt).

- ``engine.Engine``: owns the model, its data, the trainer and the inspector; synchronous.
- ``service.EngineService``: runs an Engine in one thread, ordered by any other (commands,
  a latest-wins capture mailbox, a thread-safe training control).
- ``process``: the service in a child process and the parent's handle on it.
- ``messages``: the plain data the engine sends to its viewer (torch-free).

This package's ``__init__`` imports nothing, so that ``process`` and ``messages`` can be
used by the window's process without loading torch.
"""
