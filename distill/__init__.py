"""Transfer sets, teacher labelling, losses, students and the common distiller."""
