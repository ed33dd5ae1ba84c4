"""Errors every layer raises for bad input: each message names the file and the row or key."""


class Refusal(ValueError):
    """A request that cannot succeed however often it is made: bad params, data, skills, plans, a registry
    operation that does not apply. Every layer's refusals derive from it, so the flows never retry one
    (past.continual.task_runs.retry_io) and the CLI reports it as one line."""


class DataError(Refusal):
    """Input data that cannot be used; the message names the file and the row."""
