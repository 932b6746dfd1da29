"""intentrec: the composition root that ties the offline and online packages into one CLI."""

__version__ = "0.1.0"
