"""Stage 1, preprocessing (rules/data.smk): corpus readers, raw-file handling, normalisation, vocabulary and the
(context, response) tensors every later stage reads."""
