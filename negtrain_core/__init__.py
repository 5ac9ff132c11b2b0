"""negtrain_core: the tested package behind the negtrain Snakemake pipeline.

He & Glass (ACL 2020), "Negative Training for Neural Dialogue Response Generation".
Nothing runs at import time; every stage is a function called by one thin workflow script, and the calls beneath
the stages take models and tensors for use from Python (docs/architecture.md, "Using the package from Python").
"""

__version__ = "0.1.0"
