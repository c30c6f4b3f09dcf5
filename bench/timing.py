"""The one timing rule of every benchmark here (it lives in gan/timing.py, which the trainer's precision choice
uses too): a warm-up run, then the median of ``repeats`` timed runs."""

from gan.timing import median_seconds

__all__ = ["median_seconds"]
