"""classsr: content-adaptive super-resolution (ClassSR) for images and video."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
