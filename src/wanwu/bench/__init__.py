"""``wanwu bench``: measure latency, throughput, accuracy, memory and decode speed of wanwu's
models and engines, always against a baseline (torch eager fp32, batch 1, one thread: the common textbook
setup) measured in the same run, and write the result as Markdown + JSON + PNG plots.

One module per job: ``machine`` (what we ran on), ``variants`` (what we measure), ``stats``
(percentiles, interleaving), ``latency``, ``throughput``, ``accuracy``, ``quantization``,
``decode``, ``memory`` (+ ``probe``, the fresh process it times), ``targets``, ``report``;
the ``wanwu bench`` command line is ``wanwu.cli.bench``.
"""
