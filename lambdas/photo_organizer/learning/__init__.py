"""Learning from feedback: feature vectors, the tagging model and the face matcher (numpy inference), metrics and
the promotion rule. numpy and the stdlib only (an import-linter contract): the training scripts in `sagemaker/`
ship this package into SageMaker's scikit-learn container, and Lambda, Glue and the local backend run the same
inference.

- datasets: the feature snapshot and feedback dataset as JSON Lines (the training inputs).
- features: `build_schema(photos)`, `photo_vector(photo, schema)`, `FeatureSchema` (stored inside each model).
- tagging: `TaggingModel.from_json`, `.suggest(photo) -> [TagScore(tag, confidence, on_photo)]`,
  `.predicted_tags(photo)`, `models_from_document(model_json)`; SUGGEST_FROM / SUPPRESS_BELOW.
- faces: `FaceMatcher.from_json`, `.probability(similarity, quality_a, quality_b, area_a=, area_b=)`,
  `.project(descriptors)`, `.similarity(descriptor_a, descriptor_b)`, `.threshold`, `FaceMatcher.untrained()`,
  `matchers_from_document(model_json)`.
- examples: feedback -> labels (`tag_labels`, `face_labels`), every labelled example with its fold
  (`build_examples`). cross_fitting: `fold_of` (by photo content), `out_of_fold` (pools each fold's predictions
  by a model fitted without it). evidence: weighted tag F1 and the per-example counts the gate resamples.
- metrics: `macro_f1`, `pair_f1`. promotion: `should_promote`, `decide` (a paired bootstrap over `HeldOutEvidence`,
  per-example counts evaluate.py writes). uncertainty: `margin`, `uncertainty`,
  `most_uncertain`, `interleave`.
"""
