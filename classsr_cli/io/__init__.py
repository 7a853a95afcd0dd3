"""File I/O: :mod:`~classsr_cli.io.image` (Pillow, plus ffmpeg/pypng/tifffile for 16-bit colour),
:mod:`~classsr_cli.io.classmap` and :mod:`~classsr_cli.io.video`. The only package that touches Pillow.

Nothing is imported here, so that importing one module does not pull in the others' dependencies.
"""
