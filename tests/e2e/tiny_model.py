"""A tiny random-weight llama GGUF with llama.cpp's real SPM vocabulary, for end-to-end tests."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

# Bump when the file layout written below changes, so cached models are regenerated.
GENERATOR_VERSION = 1

# Llama-2 style turns. BOS is left out on purpose: the tokenizer adds it (add_bos_token), and a
# template BOS on top would double it. The generation prompt ends on "[/INST]".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape and seed of the generated model; every field feeds the cache key."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 4
    n_ff: int = 128
    # Training context only bounds what llama-server accepts for -c without warnings; it costs
    # nothing in file size.
    n_ctx_train: int = 8192
    rms_eps: float = 1e-5
    rope_freq_base: float = 10000.0
    init_std: float = 0.02
    seed: int = 20240607
    chat_template: str = CHAT_TEMPLATE
    name: str = "tiny-llama"


def _copy_tokenizer(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> int:
    """Copies every tokenizer.* key from the vocab file; returns the vocabulary size."""
    n_vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        sub_type = (
            gguf.GGUFValueType(field.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        )
        value = field.contents()
        writer.add_key_value(key, value, vtype, sub_type=sub_type)
        if key == "tokenizer.ggml.tokens":
            n_vocab = len(value)
    if n_vocab == 0:
        raise ValueError("vocab file has no tokenizer.ggml.tokens")
    return n_vocab


def _tensors(spec: TinyModelSpec, n_vocab: int) -> dict[str, np.ndarray]:
    """Random llama weights, numpy shape (rows=out, cols=in) as gguf expects."""
    rng = np.random.default_rng(spec.seed)
    head_dim = spec.n_embd // spec.n_head
    n_embd_kv = head_dim * spec.n_head_kv

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * spec.init_std).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    tensors: dict[str, np.ndarray] = {"token_embd.weight": rand(n_vocab, spec.n_embd)}
    for i in range(spec.n_layer):
        blk = f"blk.{i}"
        tensors |= {
            f"{blk}.attn_norm.weight": ones(spec.n_embd),
            f"{blk}.attn_q.weight": rand(spec.n_embd, spec.n_embd),
            f"{blk}.attn_k.weight": rand(n_embd_kv, spec.n_embd),
            f"{blk}.attn_v.weight": rand(n_embd_kv, spec.n_embd),
            f"{blk}.attn_output.weight": rand(spec.n_embd, spec.n_embd),
            f"{blk}.ffn_norm.weight": ones(spec.n_embd),
            f"{blk}.ffn_gate.weight": rand(spec.n_ff, spec.n_embd),
            f"{blk}.ffn_up.weight": rand(spec.n_ff, spec.n_embd),
            f"{blk}.ffn_down.weight": rand(spec.n_embd, spec.n_ff),
        }
    tensors["output_norm.weight"] = ones(spec.n_embd)
    tensors["output.weight"] = rand(n_vocab, spec.n_embd)
    return tensors


def build_tiny_model(vocab_path: Path, out_path: Path, spec: TinyModelSpec | None = None) -> None:
    """Writes a llama-architecture GGUF with random F32 weights and the vocab file's tokenizer."""
    spec = spec or TinyModelSpec()
    if spec.n_embd % spec.n_head or spec.n_head % spec.n_head_kv:
        raise ValueError("n_embd must divide by n_head and n_head by n_head_kv")
    reader = gguf.GGUFReader(vocab_path)
    writer = gguf.GGUFWriter(out_path, "llama")
    writer.add_name(spec.name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(spec.n_ctx_train)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_dimension_count(spec.n_embd // spec.n_head)
    writer.add_rope_freq_base(spec.rope_freq_base)
    writer.add_layer_norm_rms_eps(spec.rms_eps)
    n_vocab = _copy_tokenizer(reader, writer)
    writer.add_vocab_size(n_vocab)
    writer.add_chat_template(spec.chat_template)
    for name, data in _tensors(spec, n_vocab).items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def model_cache_key(vocab_path: Path, spec: TinyModelSpec) -> str:
    """Hash of everything the generated file depends on: generator, spec, vocabulary bytes."""
    digest = hashlib.sha256()
    params = {
        "generator": GENERATOR_VERSION,
        "gguf": importlib.metadata.version("gguf"),
        **dataclasses.asdict(spec),
    }
    digest.update(json.dumps(params, sort_keys=True).encode())
    digest.update(hashlib.sha256(vocab_path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def cached_tiny_model(vocab_path: Path, cache_dir: Path, spec: TinyModelSpec | None = None) -> Path:
    """Returns the cached model for this spec, generating it first when absent."""
    spec = spec or TinyModelSpec()
    path = cache_dir / f"{spec.name}-{model_cache_key(vocab_path, spec)}.gguf"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a concurrent or interrupted run never sees half a file.
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        build_tiny_model(vocab_path, tmp, spec)
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def main() -> None:
    """CLI: generate the tiny model (``--out``) or fetch it from the cache (``--cache-dir``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab", type=Path, required=True, help="ggml-vocab-llama-spm.gguf")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the model to this path")
    target.add_argument("--cache-dir", type=Path, help="reuse or create the model in this folder")
    args = parser.parse_args()
    if args.out is not None:
        build_tiny_model(args.vocab, args.out)
        print(args.out)
    else:
        print(cached_tiny_model(args.vocab, args.cache_dir))


if __name__ == "__main__":
    main()
