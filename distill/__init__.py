"""Transfer sets, teacher labelling, losses, students and the common distiller."""

# registers the BiLSTM student with the transformers Auto classes, the pruned student in STUDENTS, the layer-wise
# losses in LOSSES, and the default teachers', masked LM's and general student's asset builders in ASSETS
from . import bilstm, layerwise, mlm, prune, task_agnostic, teacher  # noqa: F401
