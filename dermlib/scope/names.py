"""Names and defaults of the scope check, importable without torch (the CLI's parser reads them)."""

#: Scores computed on a frozen feature set can be shipped: the app has those features for every image.
SHIPPABLE = ("mahalanobis", "knn", "vim")
#: The extractor every shipped scope check was fitted with (a key of ``train.pretrained.OFFLINE_CHECKPOINTS``).
DEFAULT_EXTRACTOR = "tf_efficientnet_lite0"
#: Input side of the extractor. 160 px costs about half of 224 px and separated the sets as well (README).
DEFAULT_EXTRACTOR_SIZE = 160
