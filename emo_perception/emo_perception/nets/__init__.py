"""Torch models (training, export, and the torch backend). One file per model; not imported by
the runtime nodes unless the torch backend is chosen."""
