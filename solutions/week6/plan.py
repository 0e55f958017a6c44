"""Week-6 probe requests (TRUSTED). Only the declared track's probes run: the track and the
specialist's corpus are read from the pristine notebook and files, as data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("week6_capstone", Path(__file__).with_name("capstone.py"))
capstone = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capstone)


def plan(profile: str, thresholds: dict, data_dir: Path, submission: Path | None = None,
         notebook: Path | None = None) -> list[dict]:
    track, dataset = capstone.declared(capstone.notebook_sources(notebook))
    cfg = dict(capstone.CONFIG)
    seed = int(thresholds["seed"])
    block = cfg["block_size"]
    if track == "inspector":
        # Two probes that share nothing that can fail: the maps on judge-set weights, and the figure of
        # maps the judge computed itself (a plotting failure costs the figure check only, issue 19).
        chars, _, _ = capstone.shakespeare_data(data_dir)
        sample = capstone.INSPECT_TEXT
        state = capstone.inspector_state(seed, len(chars))
        idx = capstone.encode(sample, chars)
        return [
            # Dropout on (its weights are the judge's all the same): maps taken without eval() differ.
            {"id": "inspect", "probe": "inspect", "checks": [*capstone.MAPS_CHECKS, "runs_clean"], "args": {
                "vocab_size": len(chars), "config": {**cfg, "dropout": 0.2}, "seed": seed, "state": state,
                "idx": idx[None, :]}},
            {"id": "plot", "probe": "plot", "checks": ["attention_figure", "runs_clean"], "args": {
                "maps": capstone.reference_attention(state, idx, cfg["n_head"]).astype(np.float32),
                "tokens": list(sample)}},
        ]
    if track == "architect":
        chars, train, _ = capstone.shakespeare_data(data_dir)
        inputs = capstone.architect_inputs(seed)
        val_x, _ = capstone.heldout_windows(data_dir, chars, block, int(thresholds["val_windows"]))
        return [
            {"id": "rope", "probe": "rope", "checks": ["rope_relative_position", "rope_norm_and_identity", "runs_clean"],
             "args": {"head_size": 8, "T": 16, "q": inputs["q"], "k": inputs["k"], "x": inputs["x"],
                      "other_base": capstone.ROPE_OTHER_BASE}},
            {"id": "rope_attention", "probe": "rope_attention", "checks": ["rope_on_queries_and_keys_only", "runs_clean"],
             "args": {"n_embd": 32, "n_head": 4, "block_size": 16, "seed": seed, "x": inputs["attn_x"],
                      "qkv_w": inputs["qkv_w"], "proj_w": inputs["proj_w"], "proj_b": inputs["proj_b"]}},
            {"id": "swiglu", "probe": "swiglu", "checks": ["swiglu_forward", "swiglu_parameter_count", "runs_clean"],
             "args": {"n_embd": 48, "seed": seed, "x": inputs["swiglu_x"], "w1": inputs["swiglu_w1"],
                      "w2": inputs["swiglu_w2"], "w3": inputs["swiglu_w3"], "given_hidden": capstone.SWIGLU_GIVEN}},
            {"id": "compare", "probe": "compare", "checks": ["architect_training", "runs_clean"], "timeout": thresholds["probe_timeout"], "args": {
                "vocab_size": len(chars), "config": cfg, "seed": seed, "steps": int(thresholds["architect_steps"]),
                "train_ids": train.astype(np.int16), "val_x": val_x.astype(np.int16)}},
        ]
    if track == "specialist":
        text, _ = capstone.read_corpus(submission, notebook, dataset)
        if text is None:
            return []  # the checks say why
        # the notebook's own load_corpus on its DATASET (the judge compares it with the file it read)
        read = [{"id": "load_corpus", "probe": "load_corpus", "checks": ["dataset_present", "runs_clean"],
                 "args": {"path": dataset}}]
        if len(text.encode("utf-8")) < capstone.MIN_CORPUS_BYTES:
            return read  # nothing to train
        chars = capstone.vocab(text)
        train, val = capstone.split(capstone.encode(text, chars))
        val_x, _ = capstone.val_windows(val, block, int(thresholds["val_windows"]))
        return read + [{"id": "specialist", "probe": "specialist", "timeout": thresholds["probe_timeout"],
                        "checks": ["beats_bigram", "sample_style", "no_copying", "runs_clean"], "args": {
            "vocab_size": len(chars), "config": cfg, "seed": seed, "steps": int(thresholds["specialist_steps"]),
            "train_ids": train.astype(np.int32), "val_x": val_x.astype(np.int32),
            "n_samples": int(thresholds["n_samples"]), "sample_len": int(thresholds["sample_len"])}}]
    return []
