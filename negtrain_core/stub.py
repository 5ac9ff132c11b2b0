"""Stages declared in the DAG but not built yet fail loudly and honestly."""


def not_implemented(stage: str, issue: int) -> None:
    raise NotImplementedError(f"negtrain: stage '{stage}' is not implemented yet (tracked in issue #{issue})")
