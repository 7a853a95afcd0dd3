"""Typed errors raised by the library; the CLI maps them to one-line messages and exit codes."""

from __future__ import annotations

__all__ = [
    "ALREADY_EXISTS",
    "CheckpointError",
    "ClassSRError",
    "ConfigError",
    "InputError",
    "ModelNotFoundError",
    "OutputError",
    "OutputExistsError",
    "PixelLimitError",
    "PrecisionError",
    "TrainingDivergedError",
    "VideoError",
]


#: How every command words an output that is there already: ``f"{path}: {ALREADY_EXISTS}"``.
ALREADY_EXISTS = "already exists (pass --overwrite to replace it)"


class ClassSRError(Exception):
    """Base class of every error classsr raises on purpose."""

    exit_code = 1


class InputError(ClassSRError):
    """An input file is missing, unreadable, not an image/video, or too large."""


class PixelLimitError(InputError):
    """A picture larger than the pixel limit that guards against decompression bombs, in the one wording of every
    command; its ``advice`` is upscale's ``--max-pixels`` unless a command without that option gives its own
    (:meth:`advised`)."""

    def __init__(self, path: object, width: int, height: int, limit: int, advice: str | None = None) -> None:
        self.path, self.width, self.height, self.limit = path, width, height, limit
        advice = advice or f"to allow it, pass --max-pixels {width * height} (or 0 for no limit)"
        super().__init__(f"{path}: {width}x{height} is {width * height:,} pixels, above the {limit:,}-pixel limit "
                         f"that guards against decompression bombs; {advice}")

    def advised(self, advice: str) -> PixelLimitError:
        """The same refusal with another command's ``advice``."""
        return PixelLimitError(self.path, self.width, self.height, self.limit, advice)


class OutputExistsError(ClassSRError):
    """The output exists and --overwrite was not given."""


class OutputError(ClassSRError):
    """An output cannot be written (permissions, full disk, a folder in the way)."""

    @classmethod
    def of(cls, path: object, e: OSError) -> OutputError:
        """``PATH: cannot write (REASON)``, the one wording of every command for an ``OSError`` on an output; where a
        file stands in the way of its folder (``photo.png/out``), the reason names that file."""
        import errno
        import os

        if e.errno in (errno.EEXIST, errno.ENOTDIR):
            given = target = str(path)
            while target and target != os.path.dirname(target):
                if os.path.lexists(target) and not os.path.isdir(target):
                    if target == given:
                        return cls(f"{path}: is a file, not a folder")
                    return cls(f"{path}: cannot write ({target} is a file, not a folder)")
                target = os.path.dirname(target)
        return cls(f"{path}: cannot write ({e.strerror or e})")


class CheckpointError(ClassSRError):
    """A checkpoint file is missing, malformed, unsafe or does not match its metadata."""


class ModelNotFoundError(ClassSRError):
    """No installed model matches the request (name, scale)."""


class ConfigError(ClassSRError):
    """A configuration value or file is invalid."""

    exit_code = 2


class VideoError(ClassSRError):
    """Decoding, encoding or muxing a video failed."""


class PrecisionError(ClassSRError):
    """A half-precision run (fp16, bf16) gave values that are not finite (an overflow): nothing is written."""


class TrainingDivergedError(ClassSRError):
    """A training loss became NaN or infinite (a learning rate too high); the last finite checkpoint is kept."""
