"""Transfer sets, teacher labelling, losses, students and the common distiller."""

from . import bilstm  # noqa: F401 - registers the BiLSTM student with the transformers Auto classes
