"""Inference for iFlytekSpark (docs/model.md §5): KV-cache generation, sampling, streaming, prompts, export.

- :mod:`.steps`: the prefill and decode graphs (``Steps(model)``, made once per model)
- :mod:`.kv_cache`: ``KVCache``, the true sliding window of keys and values
- :mod:`.sampling`: ``Sampler`` (temperature, top-k, top-p) and ``RepetitionPenalty``
- :mod:`.generate`: ``generate(steps, prompts, config, max_length)``
- :mod:`.streamer`: ``TextStreamer``
- :mod:`.prompts`: ``read_questions``, ``apply_template``, ``check_lengths`` (pure Python)
- :mod:`.export`: ``export_mindir``, ``load_graph``
- :mod:`.runtime`: the run's model with its checkpoint and LoRA (for tasks/predict and tasks/export)

Measured on CPU (bench/bench_decode.py): graph mode compiles each graph once per shape (~1 s) and a
decode step then costs milliseconds; PyNative costs ~0.1-0.5 s a step even for the tiny test model.
"""
