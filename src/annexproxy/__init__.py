"""annexproxy: a gateway that serves git-annex repositories to unmodified git-annex clients."""

__version__ = "0.1.0"
