"""clarifai-reconciler: Terraform-style plan/apply for Clarifai apps.

Pipeline (one module per stage, one-way imports): manifest -> State; live -> State; diff; plan;
render; apply. See README.md and the module docstrings.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
