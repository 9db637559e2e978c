"""Building blocks of ``itt.report``: loading results, statistics, tables, rendering, plots.

The public entry points live in :mod:`itt.report`; these modules hold the pieces so that
each stays small and testable on its own.
"""
