"""Names and defaults of the scope check, importable without torch (the CLI's parser reads them)."""

#: Scores computed on a frozen feature set can be shipped: the app has those features for every image.
SHIPPABLE = ("mahalanobis", "knn", "vim")
#: The extractor every shipped scope check was fitted with (a key of ``train.pretrained.OFFLINE_CHECKPOINTS``).
DEFAULT_EXTRACTOR = "tf_efficientnet_lite0"
#: Input side of the extractor. At 128 px it takes 6.4 ms in ONNX Runtime against 9.1 ms at 160 px, and kept,
#: refused and flagged the same photos to within a point on the report halves (README).
DEFAULT_EXTRACTOR_SIZE = 128
