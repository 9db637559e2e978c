"""Which intermediate task? Predicting the gain of intermediate-task training before the
grid runs (SEmb, LogME, linear probe, zero-shot transfer), and scoring those predictions
against the gains the grid measured.

``python -m itt.select`` computes the scores (itt.selection.run) and writes selection.json
(itt.selection.records); the sweeper keeps the top-k candidates with
``hydra.sweeper.select=<method> hydra.sweeper.top_k=k`` (itt.selection.sweep); the report's
selection section compares the rankings with the measured gains (itt.reporting.selection).
"""
