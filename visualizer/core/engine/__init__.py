"""One engine for every way of training and looking at a model (no Qt).

- ``engine.Engine``: owns the model, its data, the trainer and the inspector; synchronous.
- ``service.EngineService``: runs an Engine in one thread, ordered by any other (commands,
  a latest-wins capture mailbox, a thread-safe training control).
- ``process``: the service in a child process and the parent's handle on it.
- ``messages``: the plain data the engine sends to its viewer (torch-free).
- ``activity``: what the engine's thread is doing, the content of the process's heartbeat.
- ``run_keeper``: one run's ``.cnnviz`` run file and autosave; ``autosave``: the autosaves
  on disk and which runs a crash interrupted (torch-free: the window reads them).

This package's ``__init__`` imports nothing, so that ``process`` and ``messages`` can be
used by the window's process without loading torch.
"""
