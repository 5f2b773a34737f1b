"""The errors mlplab raises for bad input. Each carries one sentence naming the problem."""


class MlplabError(Exception):
    """Base class: the CLI prints these as `error: <message>` and exits with code 2."""


class SpecError(MlplabError, ValueError):
    """A spec field is unknown, missing or has a bad value."""


class DataError(MlplabError, ValueError):
    """The data cannot be used: missing column, NaN target, empty table, one class, ..."""


class TrainingError(MlplabError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class RunFileError(MlplabError, ValueError):
    """A file of a run directory or saved model is missing, corrupt, or does not fit the model."""


class RunBusyError(TrainingError):
    """Another process is training in the same run directory (each run has one writer)."""


class TrainingStopped(TrainingError):
    """The trainer's `stop` hook asked it to stop (e.g. a sweep worker lost its claim)."""
