"""Exceptions the core raises; each message says what the user should do."""


class NevsegError(Exception):
    """Base class: an error the user can act on (shown as one line, never a traceback)."""


class ImageReadError(NevsegError):
    """A file could not be read as an image."""


class MaskError(NevsegError):
    """A mask is missing, unreadable or does not match its image."""


class NoPairsError(NevsegError):
    """No (image, mask) pairs were found where some were expected."""


class ModelFileError(NevsegError):
    """A model file is not a valid, safe napari-nevseg model."""


class WriteError(NevsegError):
    """A result could not be written (read-only folder, full disk, ...)."""


class ResumeError(NevsegError):
    """A training checkpoint cannot be resumed (missing, damaged, or made by another run)."""


class ProjectInUseError(NevsegError):
    """Another process (another napari window) has the project open."""
