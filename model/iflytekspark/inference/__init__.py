"""Inference for iFlytekSpark (spec §5): KV-cache generation, sampling, streaming, prompts, export.

- :mod:`.steps`: the prefill and decode graphs (``Steps(model)``, made once per model)
- :mod:`.kv_cache`: ``KVCache``, the true sliding window of keys and values
- :mod:`.sampling`: ``Sampler`` (temperature, top-k, top-p) and ``RepetitionPenalty``
- :mod:`.generate`: ``generate(steps, prompts, config, max_length)``
- :mod:`.streamer`: ``TextStreamer``
- :mod:`.prompts`: ``read_questions``, ``apply_template``, ``check_lengths`` (pure Python)
- :mod:`.export`: ``export_mindir``, ``load_graph``
"""
