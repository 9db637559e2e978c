"""Masked-language-model pretraining of tiny encoders on a local corpus (code or English text).

:mod:`itt.pretraining.corpora` reads the two corpora, :mod:`itt.pretraining.mlm` pretrains on
a token budget, :mod:`itt.pretraining.build` turns a model card's ``pretrain:`` block into a
cached model directory (the hook :func:`itt.builders.model_path` calls; models never import
this package).
The command line is ``python -m itt.pretrain``.
"""
from __future__ import annotations

from itt.pretraining.corpora import Corpus, code_corpus, get_corpus, in_memory, text_corpus
from itt.pretraining.mlm import pretrain, read_summary, tokenize_budget, train_tokenizer

__all__ = ["Corpus", "code_corpus", "text_corpus", "get_corpus", "in_memory", "pretrain", "read_summary",
           "tokenize_budget", "train_tokenizer"]
