"""Learning from feedback: feature vectors, the tagging model and the face matcher (numpy inference), metrics and
the promotion rule. numpy and the stdlib only (an import-linter contract): the training scripts in `sagemaker/`
ship this package into SageMaker's scikit-learn container, and Lambda, Glue and the local backend run the same
inference."""
