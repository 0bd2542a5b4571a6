"""Transfer sets, teacher labelling, losses, students and the common distiller."""

# registers the BiLSTM student with the transformers Auto classes, and the layer-wise losses in LOSSES
from . import bilstm, layerwise  # noqa: F401
